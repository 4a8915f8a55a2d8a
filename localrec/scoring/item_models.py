"""Item-to-item collaborative filters beyond item-kNN: RP3beta and EASE.

Both are a matrix W[a, b] of how much having item a says about item b, learned from the
training sequences as sets (order ignored); a user scores candidate b by the sum over
history items h of recency_decay ** k(h) * W[h, b] (k = 0 for the most recent item), the
same recency-weighted profile as item-kNN's. Well-tuned models of this kind match deep
sequential models in published re-evaluations (Dacrema et al., RecSys 2019).

- RP3beta (Paudel et al. 2017): a random walk item -> user -> item, each step's
  probabilities raised to alpha, with the target's popularity divided out ** beta.
  W[a, b] = count(a) ** -alpha * sum over users u with a and b of |u| ** -alpha, times
  count(b) ** -beta. Sparse: only pairs some user had.
- EASE (Steck 2019): the closed-form linear item model with zero diagonal,
  B = I - P / diag(P), P = (G + l2 I) ** -1, G the item-item co-occurrence counts. Per
  domain: P is dense (items x items), so it costs O(n ** 3) time and 8 n ** 2 bytes
  (`ease_cost`); W keeps each row's heaviest `neighbours` weights.

Each W is a function of item-pair aggregates over users (co-occurrence counts, and for
RP3beta user-length-weighted sums), so a pack can carry it with the K-user threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.linalg
import scipy.sparse as sp

from localrec.scoring.itemknn import (
    COOCCURRENCE_DECAY,
    ItemItemScorer,
    _user_item_matrix,
    cooccurrence_scorer,
)

__all__ = [
    "RP3BETA_ALPHA",
    "RP3BETA_BETA",
    "ease_cost",
    "ease_weights",
    "item_item_part",
    "keep_heaviest",
    "part_from_weights",
    "rp3beta_normalisers",
    "rp3beta_scorer",
    "rp3beta_walk",
    "rp3beta_weights",
]

IntArray = npt.NDArray[np.int64]
ItemArray = npt.NDArray[np.integer[Any]]
# RP3beta's exponents, chosen on the Food-Kitchen validation cut from the training
# sequences (NDCG@10 %, mixed food / kitchen; cross food / kitchen): alpha 0.25 scored
# 21.03 / 12.36; 10.13 / 7.97, alpha 0.5 20.88 / 12.10; 10.06 / 7.87, alpha 0.75
# 20.34 / 11.47; 9.75 / 7.60, alpha 1 19.63 / 10.86; 9.57 / 7.48 (all with beta 0); at
# alpha 1, beta 0.1 19.29 / 10.61, 0.3 18.33 / 9.98, 0.5 16.56 / 9.23. Dividing by the
# target's popularity hurts here, as it does item-kNN; alpha 0 would be plain
# co-occurrence (20.39 / 12.18; 10.05 / 7.91).
RP3BETA_ALPHA = 0.25
RP3BETA_BETA = 0.0
# Its profile's recency weight per event: item-kNN's.
RP3BETA_DECAY = 0.8


def rp3beta_scorer(
    sequences: Sequence[ItemArray], n_items: int, *, name: str = "rp3beta"
) -> ItemItemScorer:
    """RP3beta over the training sequences, with the chosen exponents."""
    weights = rp3beta_weights(sequences, n_items, alpha=RP3BETA_ALPHA, beta=RP3BETA_BETA)
    return ItemItemScorer(weights, recency_decay=RP3BETA_DECAY, name=name)


def item_item_part(name: str, sequences: Sequence[ItemArray], n_items: int) -> ItemItemScorer:
    """The hybrid's order-blind collaborative part `name` ("cooccurrence" or "rp3beta")."""
    if name == "cooccurrence":
        return cooccurrence_scorer(sequences, n_items)
    if name == "rp3beta":
        return rp3beta_scorer(sequences, n_items)
    raise ValueError(f"unknown collaborative part {name!r}")


def part_from_weights(name: str, weights: sp.spmatrix) -> ItemItemScorer:
    """The part `name` over stored weights W (a pack's), scored as `item_item_part`'s."""
    decay = {"cooccurrence": COOCCURRENCE_DECAY, "rp3beta": RP3BETA_DECAY}.get(name)
    if decay is None:
        raise ValueError(f"unknown collaborative part {name!r}")
    return ItemItemScorer(weights, recency_decay=decay, name=name)


def rp3beta_weights(
    sequences: Sequence[ItemArray],
    n_items: int,
    *,
    alpha: float = RP3BETA_ALPHA,
    beta: float = RP3BETA_BETA,
    neighbours: int = 0,
) -> sp.csr_matrix:
    """RP3beta's W (module docstring); `neighbours` > 0 keeps each row's heaviest N."""
    users = _user_item_matrix(sequences, n_items)
    counts = np.asarray(users.sum(axis=0), dtype=np.float64).ravel()
    source, target = rp3beta_normalisers(counts, alpha, beta)
    walk = rp3beta_walk(sequences, n_items, alpha=alpha)
    out = sp.csr_matrix(sp.diags(source) @ walk @ sp.diags(target))
    return keep_heaviest(out, neighbours) if neighbours > 0 else out


def rp3beta_walk(
    sequences: Sequence[ItemArray], n_items: int, *, alpha: float = RP3BETA_ALPHA
) -> sp.csr_matrix:
    """RP3beta's step through the users: sum over users u with a and b (a != b) of
    |u| ** -alpha (|u| distinct items). A sum over users, so the sums over any split of
    them add up to it (the Ray engine's chunks)."""
    users = _user_item_matrix(sequences, n_items)
    lengths = np.asarray(users.sum(axis=1), dtype=np.float64).ravel()
    user_scale = sp.diags(np.where(lengths > 0, np.maximum(lengths, 1.0) ** -alpha, 0.0))
    walk = sp.csr_matrix(users.T @ user_scale @ users)
    walk.setdiag(0)
    walk.eliminate_zeros()
    return walk


def rp3beta_normalisers(
    counts: npt.NDArray[np.float64], alpha: float = RP3BETA_ALPHA, beta: float = RP3BETA_BETA
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """W = diag(source) @ walk @ diag(target): from the distinct users per item, the
    source's count ** -alpha and the target's ** -beta (0 for items nobody had)."""
    source = np.where(counts > 0, np.maximum(counts, 1.0) ** -alpha, 0.0)
    target = np.where(counts > 0, np.maximum(counts, 1.0) ** -beta, 0.0)
    return source, target


def ease_cost(n_items: int) -> tuple[float, float]:
    """EASE on one domain of n items: bytes of its dense float64 matrices (the gram and its
    inverse, which LAPACK may not overwrite in place) and floating-point operations."""
    return 2 * 8.0 * n_items**2, float(n_items) ** 3


def ease_weights(
    gram: sp.spmatrix,
    items: IntArray,
    *,
    l2: float = 200.0,
    neighbours: int = 200,
) -> sp.csr_matrix:
    """EASE's B over `items` (one domain), from their co-occurrence counts `gram` (n_items x
    n_items, e.g. `cooccurrence_weights` plus the diagonal of item counts): each row's
    heaviest `neighbours` weights, in the full catalogue's numbering."""
    n_items = gram.shape[0]
    items = np.asarray(items, dtype=np.int64)
    block = sp.csr_matrix(gram)[items][:, items].toarray().astype(np.float64)
    block[np.diag_indices_from(block)] += l2
    precision = scipy.linalg.inv(block, overwrite_a=True, check_finite=False)
    del block
    diagonal = np.diag(precision).copy()
    precision /= -diagonal[None, :]
    np.fill_diagonal(precision, 0.0)
    local = _dense_heaviest(precision, neighbours)
    del precision
    coo = local.tocoo()
    return sp.csr_matrix(
        (coo.data, (items[coo.row], items[coo.col])), shape=(n_items, n_items), dtype=np.float64
    )


def _dense_heaviest(matrix: np.ndarray, neighbours: int) -> sp.csr_matrix:
    """Each row's `neighbours` largest positive entries of a dense matrix, as sparse."""
    n = matrix.shape[1]
    take = min(neighbours, n)
    rows_l, cols_l, data_l = [], [], []
    for start in range(0, matrix.shape[0], 1024):
        block = matrix[start : start + 1024]
        cols = np.argpartition(-block, take - 1, axis=1)[:, :take]
        values = np.take_along_axis(block, cols, axis=1)
        keep = values > 0
        rows_l.append(np.repeat(np.arange(start, start + len(block)), take)[keep.ravel()])
        cols_l.append(cols[keep])
        data_l.append(values[keep])
    return sp.csr_matrix(
        (np.concatenate(data_l), (np.concatenate(rows_l), np.concatenate(cols_l))),
        shape=matrix.shape,
    )


def keep_heaviest(matrix: sp.spmatrix, neighbours: int) -> sp.csr_matrix:
    """Each row's `neighbours` heaviest entries (ties: the lower column first)."""
    csr = sp.csr_matrix(matrix)
    csr.sort_indices()
    rows, cols, data = [], [], []
    for a in range(csr.shape[0]):
        lo, hi = csr.indptr[a], csr.indptr[a + 1]
        if hi == lo:
            continue
        top = np.argsort(-csr.data[lo:hi], kind="stable")[:neighbours]
        rows.append(np.full(len(top), a, np.int64))
        cols.append(csr.indices[lo:hi][top])
        data.append(csr.data[lo:hi][top])
    if not rows:
        return sp.csr_matrix(csr.shape, dtype=np.float64)
    return sp.csr_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=csr.shape
    )
