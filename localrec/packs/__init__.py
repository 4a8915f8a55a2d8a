"""Packs: the read-only file a vendor builds and a device recommends from."""
