"""A deterministic stand-in encoder for storage and scoring tests (never for model quality)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from localrec.embedding.llama_encoder import normalise_rows
from localrec.models.registry import ModelSpec


class FakeEncoder:
    """Hashes each text to a fixed unit vector; counts how many texts it was asked for."""

    def __init__(self, name: str = "fake", dim: int = 16) -> None:
        self.name = name
        self.dim = dim
        self.spec = ModelSpec(name=name, dim=dim, pooling="mean", max_tokens=256)
        self.max_tokens = 256
        self.calls = 0
        self.texts_seen: list[str] = []
        self.last_truncated = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    def close(self) -> None:
        pass

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts_seen.extend(texts)
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).standard_normal(self.dim))
        return normalise_rows(np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim))
