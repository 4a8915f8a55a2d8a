"""A deterministic stand-in encoder for storage and scoring tests (never for model quality)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from localrec.encoder import normalise_rows


class FakeEncoder:
    """Hashes each text to a fixed unit vector; counts how many texts it was asked for."""

    def __init__(self, name: str = "fake", dim: int = 16) -> None:
        self.name = name
        self.dim = dim
        self.calls = 0
        self.texts_seen: list[str] = []
        self.last_truncated = 0

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts_seen.extend(texts)
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).standard_normal(self.dim))
        return normalise_rows(np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim))
