"""A user's history as every scorer reads it: catalogue rows, action strengths, free text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["FREE_TEXT", "History", "histories_of_rows"]

# The row of an event that is free text (an ad-hoc history), not a catalogue item.
FREE_TEXT = -1
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class History:
    """One user's events, oldest first.

    `rows` are the events' catalogue rows (indices into the item vectors; FREE_TEXT for an
    event that is free text), `strengths` their action strengths (`weighting`), and
    `free_vectors` the vectors of the free-text events, in order.
    """

    rows: IntArray
    strengths: npt.NDArray[np.float64]
    free_vectors: npt.NDArray[np.float32] | None = None

    @classmethod
    def of_rows(cls, rows: npt.ArrayLike) -> History:
        """Catalogue items only, every one a purchase (how the evaluation protocol sees it)."""
        array = np.asarray(rows, dtype=np.int64)
        return cls(array, np.ones(len(array), dtype=np.float64))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def known(self) -> IntArray:
        """The catalogue rows, in order (free text left out)."""
        known: IntArray = self.rows[self.rows != FREE_TEXT]
        return known

    def vectors(self, catalogue: np.ndarray) -> npt.NDArray[np.float32]:
        """One vector per event: the catalogue's row, or the free text's own vector."""
        out = np.zeros((len(self.rows), catalogue.shape[1]), dtype=np.float32)
        at = self.rows != FREE_TEXT
        out[at] = catalogue[self.rows[at]]
        if not at.all():
            assert self.free_vectors is not None, "free-text events need their vectors"
            out[~at] = self.free_vectors
        return out

    def has_domain(self, item_domains: np.ndarray, domain: int) -> bool:
        """Whether any catalogue item of the history is of `domain`: the setting's test."""
        known = self.known
        return bool(len(known)) and bool((item_domains[known] == domain).any())


def histories_of_rows(histories: Sequence[Any]) -> list[History]:
    """Index arrays of the evaluation protocol as histories of purchases."""
    return [h if isinstance(h, History) else History.of_rows(h) for h in histories]
