"""The recency-weighted history means the adapter's user vector is made of (`adapter`):
of other domains' items, of the target domain's, and of learned per-item input vectors.

Built straight from the events, oldest first, as a device asks for one history at a
time: scipy's general constructors and products cost a millisecond or more each on a
36k-item catalogue whatever the history's length, which was most of a served list's
adapter time. Training builds its (many) prefixes with `adapter.normalised`; the means
are the same up to float rounding (tests/scoring/test_history_means.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from localrec.scoring.history import FREE_TEXT, History
from localrec.weighting import ages, recency

__all__ = ["HistoryWeights", "history_weights", "rows_product"]

# rows_product gathers the rows it reads when they are at most this share of the table;
# past it, scipy's product over the whole table is as cheap (a big evaluation batch).
_GATHER_SHARE = 0.25


@dataclass(frozen=True)
class HistoryWeights:
    """Row-normalised (histories x columns) recency weights of the last `max_prefix`
    events of each history.

    `src` holds the items of other domains and free text, `same` the target domain's: the
    catalogue's items are columns 0..n-1, free-text events get columns n, n+1, ... and
    their vectors are `free` (None when there is no free text). `catalogue` is src + same
    over the catalogue's columns only (free text has no learned input vector).
    """

    src: sp.csr_matrix
    same: sp.csr_matrix
    catalogue: sp.csr_matrix
    free: np.ndarray | None
    n_items: int

    def mean(self, weights: sp.csr_matrix, vectors: np.ndarray) -> np.ndarray:
        """The weighted mean of catalogue vectors, plus that of free-text vectors."""
        if self.free is None:
            return np.asarray(rows_product(weights, vectors), np.float32)
        n = self.n_items
        catalogue = rows_product(weights[:, :n], vectors)
        return np.asarray(catalogue + weights[:, n:] @ self.free, np.float32)


def history_weights(
    histories: Sequence[History],
    item_domains: np.ndarray,
    target_domain: int,
    n_items: int,
    half_life: float,
    max_prefix: int,
) -> HistoryWeights:
    """The weights of each history's last `max_prefix` events: 0.5 ** (age / half_life),
    divided by their sum over the history's events of the same group (other domains and
    free text, or the target domain)."""
    rows_l, cols_l, ages_l, free_l = [], [], [], []
    extra = 0
    for r, history in enumerate(histories):
        h = np.asarray(history.rows[-max_prefix:], dtype=np.int64)
        if not len(h):
            continue
        free = h == FREE_TEXT
        if free.any():
            assert history.free_vectors is not None, "free-text events need their vectors"
            count = int(free.sum())
            free_l.append(history.free_vectors[len(history.free_vectors) - count :])
            h = h.copy()
            h[free] = n_items + extra + np.arange(count)
            extra += count
        rows_l.append(np.full(len(h), r, dtype=np.int64))
        cols_l.append(h)
        ages_l.append(ages(len(h)))
    b = len(histories)
    shape = (b, n_items + extra)
    if not rows_l:
        empty = sp.csr_matrix(shape, dtype=np.float32)
        return HistoryWeights(empty, empty, empty[:, :n_items], None, n_items)
    rows, cols = np.concatenate(rows_l), np.concatenate(cols_l)
    weights = recency(np.concatenate(ages_l), half_life)
    in_catalogue = cols < n_items
    same = np.zeros(len(cols), dtype=bool)
    same[in_catalogue] = item_domains[cols[in_catalogue]] == target_domain
    # Each event's weight over its group's sum: the groups split every row in two.
    group = same.astype(np.int64)
    sums = np.bincount(rows * 2 + group, weights=weights, minlength=2 * b)
    data = (weights / sums[rows * 2 + group]).astype(np.float32)
    free_vectors = np.concatenate(free_l).astype(np.float32) if free_l else None

    def matrix(keep: np.ndarray, columns: int) -> sp.csr_matrix:
        indptr = np.zeros(b + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows[keep], minlength=b), out=indptr[1:])
        return sp.csr_matrix((data[keep], cols[keep], indptr), shape=(b, columns))

    return HistoryWeights(
        matrix(~same, shape[1]),
        matrix(same, shape[1]),
        matrix(in_catalogue, n_items),
        free_vectors,
        n_items,
    )


def rows_product(weights: sp.csr_matrix, dense: np.ndarray) -> np.ndarray:
    """weights @ dense, reading only the rows of `dense` that `weights` uses.

    scipy first converts all of `dense` to the result's type: a stored adapter's float16
    input vectors (36k x 64 on Food-Kitchen) were converted on every call, 11 ms of a 14
    ms adapter score. The sums are scipy's, in the same order."""
    dtype = np.result_type(weights.dtype, dense.dtype)
    used, columns = np.unique(weights.indices, return_inverse=True)
    if len(used) > _GATHER_SHARE * len(dense):
        whole: np.ndarray = weights @ np.asarray(dense, dtype)
        return whole
    compact = sp.csr_matrix(
        (weights.data, columns.reshape(-1), weights.indptr), shape=(weights.shape[0], len(used))
    )
    out: np.ndarray = compact @ np.asarray(dense[used], dtype)
    return out
