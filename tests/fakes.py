"""Stand-ins for real things: a deterministic encoder for storage and scoring tests (never for
model quality), a random adapter for the scoring arithmetic, and tiny GGUF files for the
model-file checks."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from localrec.embedding.llama_encoder import normalise_rows
from localrec.models.registry import ModelSpec
from localrec.scoring.adapter import DomainAdapter


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


def write_tiny_gguf(path: Path, arch: str = "bert", pooling: int | None = 1) -> Path:
    """A well-formed GGUF of one 4 x 8 tensor with `arch` and `pooling` (a llama.cpp
    pooling type; None leaves it unset) in its header, and no weights or vocabulary.
    By default it passes localrec's header checks (bert, mean pooling)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_embedding_length(8)
    writer.add_context_length(64)
    writer.add_block_count(1)
    if pooling is not None:
        writer.add_pooling_type(gguf.PoolingType(pooling))
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def random_domain_adapter(
    rng: np.random.Generator,
    items: int,
    dim: int,
    d: int,
    *,
    domain: int = 0,
    stored: type = np.float32,
    inputs: bool = False,
) -> DomainAdapter:
    """A domain's adapter of random weights; `stored` is the dtype of its offsets and input
    vectors (float16 as a stored adapter's)."""
    return DomainAdapter(
        domain=domain,
        w_src=rng.normal(size=(d, dim)).astype(np.float32),
        w_same=rng.normal(size=(d, dim)).astype(np.float32),
        proj=rng.normal(size=(d, dim)).astype(np.float32),
        offsets=rng.normal(size=(items, d)).astype(stored),
        bias=rng.normal(size=items).astype(np.float32),
        inputs=rng.normal(size=(items, d)).astype(stored) if inputs else None,
    )
