"""Texts to vectors: the llama.cpp encoder, its F16 twin, one-shot embedding."""
