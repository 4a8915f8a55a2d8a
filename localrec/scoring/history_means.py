"""The recency-weighted history means the adapter's user vector is made of (`adapter`):
of other domains' items, of the target domain's, and of learned per-item input vectors.

Summed straight from the events, in numpy: a device asks for one history at a time,
and scipy's sparse matrices cost a millisecond or more per list on a 36k-item catalogue
whatever the history's length (it converted a stored adapter's float16 input vectors,
36k x 64, to float32 on every product). Training builds its (many) prefixes as sparse
matrices with `adapter.normalised`; the means are the same up to float rounding
(tests/scoring/test_history_means.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from localrec.scoring.history import FREE_TEXT, History
from localrec.weighting import ages, recency

__all__ = ["HistoryWeights", "history_weights"]

# History events whose vectors are gathered at once (a batch of many histories is taken
# in slices of this many events: 4096 x 384 float32 is 6 MB).
_EVENTS_AT_ONCE = 4096


@dataclass(frozen=True)
class HistoryWeights:
    """The last `max_prefix` events of each history, oldest first, history by history.

    `rows` is each event's history, `cols` its catalogue row (free-text events get
    n_items, n_items + 1, ... and their vectors are `free`, None when there is no free
    text), `same` whether it is an item of the target domain, and `weights` its recency
    weight 0.5 ** (age / half_life) over the sum of those of its history's events of the
    same group (the target domain's, or the others and free text).
    """

    histories: int
    rows: np.ndarray
    cols: np.ndarray
    same: np.ndarray
    weights: np.ndarray
    free: np.ndarray | None
    n_items: int

    def mean(self, same: bool, vectors: np.ndarray) -> np.ndarray:
        """Each history's weighted mean of its target-domain (`same`) or other events'
        vectors (catalogue rows of `vectors`, or free text's own): (histories, dim)."""
        keep = self.same == same
        cols = self.cols[keep]
        free = self.free

        def table(at: slice) -> np.ndarray:
            picked = cols[at]
            if free is None:
                return np.asarray(vectors[picked], np.float32)
            out = np.empty((len(picked), vectors.shape[1]), np.float32)
            known = picked < self.n_items
            out[known] = vectors[picked[known]]
            out[~known] = free[picked[~known] - self.n_items]
            return out

        return self._summed(keep, table, vectors.shape[1])

    def learned(self, inputs: np.ndarray) -> np.ndarray:
        """Each history's weighted sum of the learned input vectors of its catalogue
        items (free text has none), each with its group's weight: (histories, d)."""
        keep = self.cols < self.n_items
        cols = self.cols[keep]
        return self._summed(
            keep, lambda at: np.asarray(inputs[cols[at]], np.float32), inputs.shape[1]
        )

    def _summed(
        self, keep: np.ndarray, table: Callable[[slice], np.ndarray], dim: int
    ) -> np.ndarray:
        """sum over the kept events e of history r of weights[e] * table(e), per r."""
        out = np.zeros((self.histories, dim), np.float32)
        rows, weights = self.rows[keep], self.weights[keep]
        for start in range(0, len(rows), _EVENTS_AT_ONCE):
            at = slice(start, start + _EVENTS_AT_ONCE)
            np.add.at(out, rows[at], weights[at, None] * table(at))
        return out


def history_weights(
    histories: Sequence[History],
    item_domains: np.ndarray,
    target_domain: int,
    n_items: int,
    half_life: float,
    max_prefix: int,
) -> HistoryWeights:
    """The weights of each history's last `max_prefix` events (see `HistoryWeights`)."""
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
    if not rows_l:
        none = np.zeros(0, dtype=np.int64)
        return HistoryWeights(
            b, none, none, none.astype(bool), none.astype(np.float32), None, n_items
        )
    rows, cols = np.concatenate(rows_l), np.concatenate(cols_l)
    weights = recency(np.concatenate(ages_l), half_life)
    in_catalogue = cols < n_items
    same = np.zeros(len(cols), dtype=bool)
    same[in_catalogue] = item_domains[cols[in_catalogue]] == target_domain
    # Each event's weight over its group's sum: the groups split every row in two.
    group = rows * 2 + same
    sums = np.bincount(group, weights=weights, minlength=2 * b)
    normalised = (weights / sums[group]).astype(np.float32)
    free_vectors = np.concatenate(free_l).astype(np.float32) if free_l else None
    return HistoryWeights(b, rows, cols, same, normalised, free_vectors, n_items)
