"""What a scorer works out from a candidate array alone, kept for the next call with the
same candidates.

A device ranks the same domain's candidates again and again: the unique rows, the
columns of a collaborative matrix restricted to them, their popularity. Worked out anew
they were most of a served list's time (Food-Kitchen kitchen, 27,637 candidates). Kept
here they are the very arrays computing them anew gives, so every score is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np

__all__ = ["KEPT_CANDIDATE_CELLS", "KEPT_CANDIDATE_SETS", "CandidateMemo"]

T = TypeVar("T")
# Candidate arrays kept per memo: a device's domains (and a pool or two) at once.
KEPT_CANDIDATE_SETS = 4
# Larger candidate arrays are not kept: an evaluation batch (many histories' candidates)
# is not asked for again, and what it would keep could be hundreds of MB.
KEPT_CANDIDATE_CELLS = 1 << 17


class CandidateMemo(Generic[T]):
    """The value `make()` gave for each of the last few candidate arrays of at most
    `cells` candidates (compared by value; a copy of the key is kept, so the caller may
    reuse its array).

    Safe to share between threads: the entries are replaced whole, never changed in
    place, so a reader sees the old entries or the new ones; two threads missing at once
    both compute the same value. Callers must not modify what it returns."""

    def __init__(self, size: int = KEPT_CANDIDATE_SETS, cells: int = KEPT_CANDIDATE_CELLS) -> None:
        self.size = size
        self.cells = cells
        self._entries: tuple[tuple[np.ndarray, T], ...] = ()

    def get(self, candidates: np.ndarray, make: Callable[[], T]) -> T:
        if candidates.size > self.cells:
            return make()
        for key, value in self._entries:
            if key.shape == candidates.shape and np.array_equal(key, candidates):
                return value
        value = make()
        key = np.array(candidates, copy=True)
        key.setflags(write=False)
        self._entries = ((key, value), *self._entries[: self.size - 1])
        return value

    def clear(self) -> None:
        self._entries = ()
