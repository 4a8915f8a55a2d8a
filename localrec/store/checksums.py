"""CRC-32 checksums of stored vectors: damage to a vector's bytes is found when it is read."""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["crc32_or_none", "damaged_rows", "row_checksums"]


def row_checksums(rows: np.ndarray) -> np.ndarray:
    """The CRC-32 of each row's bytes, as little-endian uint32 (what a packed matrix's
    `checksums` BLOB holds). 100,000 rows of 384 float32 take about 0.1 s."""
    data = np.ascontiguousarray(rows).view(np.uint8).reshape(len(rows), -1)
    return np.fromiter((zlib.crc32(row.data) for row in data), dtype="<u4", count=len(data))


def damaged_rows(rows: np.ndarray, checksums: np.ndarray) -> np.ndarray:
    """Which rows' bytes no longer match their stored checksums."""
    found: np.ndarray = row_checksums(rows) != np.asarray(checksums, dtype=np.int64)
    return found


def crc32_or_none(blob: bytes | None) -> int | None:
    """The checksum of one stored vector (NULL stays NULL), as SQL function localrec_crc32."""
    return None if blob is None else zlib.crc32(blob)
