"""One-shot embedding of texts with a named model: what `localrec embed` and quick scripts use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from localrec.embedding.llama_encoder import open_encoder
from localrec.errors import EncoderError

__all__ = ["EmbedResult", "embed_texts", "save_npy"]


@dataclass(frozen=True)
class EmbedResult:
    """Vectors in input order, with what the encoder had to cut."""

    model: str
    vectors: np.ndarray
    truncated: int
    max_tokens: int


def embed_texts(
    texts: Sequence[str], model: str | None = None, *, query: bool = False, verbose: bool = False
) -> EmbedResult:
    if isinstance(texts, str | bytes):
        raise EncoderError("embed_texts() takes a list of texts, not one string")
    with open_encoder(model, verbose=verbose) as encoder:
        vectors = encoder.encode(list(texts), query=query)
        return EmbedResult(encoder.name, vectors, encoder.last_truncated, encoder.max_tokens)


def save_npy(path: Path, vectors: np.ndarray) -> None:
    np.save(path, vectors.astype("<f4", copy=False), allow_pickle=False)
