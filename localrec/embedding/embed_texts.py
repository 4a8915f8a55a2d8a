"""One-shot embedding of texts with a named model: what `localrec embed` and quick scripts use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from localrec.embedding.loader import open_encoder
from localrec.errors import EncoderError

__all__ = ["EmbedResult", "embed_texts", "save_npy"]


@dataclass(frozen=True)
class EmbedResult:
    """Vectors in input order, with what the encoder had to cut.

    Attributes:
        model: The model's name.
        vectors: An (n, dim) float32 array of unit vectors, one row per text.
        truncated: How many texts were cut at the model's token limit.
        max_tokens: That limit.
    """

    model: str
    vectors: np.ndarray
    truncated: int
    max_tokens: int

    @property
    def dim(self) -> int:
        """The vectors' dimension."""
        return int(self.vectors.shape[1])

    def to_lists(self) -> list[list[float]]:
        """The vectors as lists of floats: what `localrec embed --json` prints."""
        lists: list[list[float]] = self.vectors.tolist()
        return lists

    def summaries(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Per text (in input order): its dim, the vector's norm and first four values."""
        norms = np.linalg.norm(self.vectors.astype(np.float64), axis=1)
        return [
            {"text": text, "dim": self.dim, "norm": float(norm), "first": row[:4]}
            for text, norm, row in zip(texts, norms, self.to_lists(), strict=True)
        ]


def embed_texts(
    texts: Sequence[str], model: str | None = None, *, query: bool = False, verbose: bool = False
) -> EmbedResult:
    """Embed texts with a model loaded for this call, and close it again (an app that
    embeds often keeps one `open_encoder()` instead).

    Args:
        texts: The texts, in order.
        model: A model name; None for the default model.
        query: Apply the model's query prefix (e5: `query: `) instead of the document one.
        verbose: Show llama.cpp's own log on stderr.
    """
    if isinstance(texts, str | bytes):
        raise EncoderError("embed_texts() takes a list of texts, not one string")
    with open_encoder(model, verbose=verbose) as encoder:
        vectors = encoder.encode(list(texts), query=query)
        return EmbedResult(encoder.name, vectors, encoder.last_truncated, encoder.max_tokens)


def save_npy(path: Path, vectors: np.ndarray) -> None:
    np.save(path, vectors.astype("<f4", copy=False), allow_pickle=False)
