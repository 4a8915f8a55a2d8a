"""The counting stage of `pack build --engine ray`, as the functions Ray Data runs: a map
from chunks of users to the local build's counts per chunk (`chunk_counts`), a reduce per
block of source items that sums them and applies the local build's normalisation,
K-threshold and top-N (`block_aggregates`), and the driver's assembly of the kept pairs
(`assemble`). Plain numpy and scipy: no Ray here (`ray_engine` runs them).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from localrec.errors import EngineError
from localrec.packs.aggregates import (
    PrivateAggregates,
    item_users,
    pair_users,
    private_popularity,
    private_similarity,
)
from localrec.scoring.item_models import (
    RP3BETA_ALPHA,
    RP3BETA_BETA,
    rp3beta_normalisers,
    rp3beta_walk,
)
from localrec.scoring.itemknn import (
    DAMPING,
    DISTANCE_EXPONENT,
    NORM_SOURCE,
    NORM_TARGET,
    RECENCY_DECAY,
    cooccurrence_counts,
    forward_pair_weights,
    item_counts,
    pair_normalisers,
)

__all__ = ["PARTS", "assemble", "block_aggregates", "chunk_counts"]

# Row kinds of the counting stage's output: forward pairs, items, users, pairs had by the
# same users (the order-blind parts' counts), and from _KEPT_PART on, the kept weights of
# the order-blind part parts[kind - _KEPT_PART].
_PAIR, _ITEM, _USERS, _BOTH, _KEPT_PART = 0, 1, 2, 3, 4
# The order-blind parts this engine counts (`scoring.hybrid.ITEM_ITEM_PARTS`).
PARTS = ("cooccurrence", "rp3beta")
Columns = dict[str, np.ndarray]


def _rows(kind: int, block: np.ndarray, a: np.ndarray, **columns: np.ndarray) -> Columns:
    n = len(a)
    out: Columns = {
        "kind": np.full(n, kind, np.int8),
        "block": block.astype(np.int64),
        "a": a.astype(np.int64),
        "b": np.full(n, -1, np.int64),
        "w": np.zeros(n, np.float64),
        "u": np.zeros(n, np.int64),
        "c": np.zeros(n, np.int64),
        "part": np.zeros(n, np.int64),
    }
    out.update(columns)
    return out


def _concat(parts: list[Columns]) -> Columns:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def chunk_counts(
    batch: Columns, n_items: int, block_rows: int, parts: tuple[str, ...] = ()
) -> Columns:
    """Map: each chunk of users to its pair weights and distinct-user counts per pair, and
    its occurrences and distinct users per item (the local build's functions, per chunk);
    with `parts`, also how many of its users had both items of a pair, and (for RP3beta)
    its walk through them."""
    out: list[Columns] = []
    for flat, lengths, part in zip(batch["flat"], batch["lengths"], batch["part"], strict=True):
        items = np.frombuffer(flat, dtype=np.int64)
        sizes = np.frombuffer(lengths, dtype=np.int64)
        sequences = np.split(items, np.cumsum(sizes)[:-1]) if len(sizes) else []
        weights = forward_pair_weights(
            sequences, n_items, distance_exponent=DISTANCE_EXPONENT, damping=DAMPING
        ).tocoo()
        users = pair_users(sequences, n_items).tocoo()
        keys = weights.row.astype(np.int64) * n_items + weights.col
        user_keys = users.row.astype(np.int64) * n_items + users.col
        if not np.array_equal(keys, user_keys):
            raise EngineError("the pair weights and pair users of a chunk name different pairs")
        a, tag = weights.row.astype(np.int64), int(part)
        pair_columns = {
            "b": weights.col.astype(np.int64),
            "w": weights.data.astype(np.float64),
            "u": users.data.astype(np.int64),
            "part": np.full(len(a), tag, np.int64),
        }
        out.append(_rows(_PAIR, a // block_rows, a, **pair_columns))
        counts = item_counts(sequences, n_items).astype(np.int64)
        distinct = item_users(sequences, n_items)
        had = np.flatnonzero(counts)
        item_columns = {"u": distinct[had], "c": counts[had], "part": np.full(len(had), tag)}
        out.append(_rows(_ITEM, had // block_rows, had, **item_columns))
        one = np.zeros(1, np.int64)
        out.append(_rows(_USERS, one, one, u=one + len(sizes), part=one + tag))
        if parts:
            out.append(_both_rows(sequences, n_items, block_rows, tag, "rp3beta" in parts))
    if not out:
        return _rows(_USERS, np.zeros(0, np.int64), np.zeros(0, np.int64))
    return _concat(out)


def _both_rows(
    sequences: list[np.ndarray], n_items: int, block_rows: int, tag: int, walk: bool
) -> Columns:
    """One chunk's pairs (a != b) some user had both of: how many users (u) and, with
    `walk`, RP3beta's walk through them (w)."""
    counted = cooccurrence_counts(sequences, n_items)
    counted.sort_indices()
    both = counted.tocoo()
    a, b = both.row.astype(np.int64), both.col.astype(np.int64)
    columns = {"b": b, "u": both.data.astype(np.int64), "part": np.full(len(a), tag, np.int64)}
    if walk:
        walked = rp3beta_walk(sequences, n_items, alpha=RP3BETA_ALPHA)
        walked.sort_indices()
        steps = walked.tocoo()
        if not (np.array_equal(steps.row, both.row) and np.array_equal(steps.col, both.col)):
            raise EngineError("the co-occurrence counts and RP3beta walk name different pairs")
        columns["w"] = steps.data.astype(np.float64)
    return _rows(_BOTH, a // block_rows, a, **columns)


def _summed(group: Columns, kind: int, lo: int, n_items: int) -> tuple[np.ndarray, ...]:
    """A block's pair rows of `kind`, summed per pair in chunk order (so a rerun gives the
    same bits): source (block-relative), target, weight, users."""
    rows = group["kind"] == kind
    a, b = group["a"][rows] - lo, group["b"][rows]
    order = np.lexsort((group["part"][rows], b, a))
    key = (a * n_items + b)[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    weight = np.add.reduceat(group["w"][rows][order], starts)
    made = np.add.reduceat(group["u"][rows][order], starts)
    return key[starts] // n_items, key[starts] % n_items, weight, made


def _kept_rows(
    kind: int,
    block: int,
    lo: int,
    weights: sp.csr_matrix,
    users: sp.csr_matrix,
    min_users: int,
    neighbours: int,
) -> Columns:
    kept = private_similarity(weights, users, min_users, neighbours).tocoo()
    columns = {"b": kept.col.astype(np.int64), "w": kept.data.astype(np.float64)}
    return _rows(kind, np.full(kept.nnz, block), kept.row.astype(np.int64) + lo, **columns)


def block_aggregates(
    group: Columns,
    n_items: int,
    block_rows: int,
    min_users: int,
    neighbours: int,
    parts: tuple[str, ...] = (),
) -> Columns:
    """Reduce: one block of source items' summed pair weights and pair users (summed in
    chunk order, so a rerun gives the same bits), normalised by the source's count, then
    the local build's K-threshold and top-N; the block's item counts; the users."""
    kind = group["kind"]
    block = int(group["block"][0])
    lo = block * block_rows
    rows = min(block_rows, n_items - lo)
    out: list[Columns] = []
    users = kind == _USERS
    if users.any():
        total = np.asarray([int(group["u"][users].sum())], np.int64)
        out.append(_rows(_USERS, np.zeros(1, np.int64), np.zeros(1, np.int64), u=total))
    items = kind == _ITEM
    counts = np.zeros(rows, np.int64)
    distinct = np.zeros(rows, np.int64)
    np.add.at(counts, group["a"][items] - lo, group["c"][items])
    np.add.at(distinct, group["a"][items] - lo, group["u"][items])
    had = np.flatnonzero(counts)
    out.append(_rows(_ITEM, np.full(len(had), block), had + lo, u=distinct[had], c=counts[had]))
    pairs = kind == _PAIR
    shape = (rows, n_items)
    if pairs.any():
        a, b, weight, made = _summed(group, _PAIR, lo, n_items)
        # The right-hand normaliser is 1 (NORM_TARGET is 0): a block knows its own items'
        # counts only.
        left, _ = pair_normalisers(counts.astype(np.float64), NORM_SOURCE, NORM_TARGET)
        similarity = sp.csr_matrix(sp.diags(left) @ sp.csr_matrix((weight, (a, b)), shape=shape))
        users_made = sp.csr_matrix((made, (a, b)), shape=shape)
        out.append(_kept_rows(_PAIR, block, lo, similarity, users_made, min_users, neighbours))
    if parts and (kind == _BOTH).any():
        a, b, walk, had = _summed(group, _BOTH, lo, n_items)
        both = sp.csr_matrix((had, (a, b)), shape=shape)
        for number, name in enumerate(parts):
            if name == "cooccurrence":
                weights = sp.csr_matrix((had.astype(np.float64), (a, b)), shape=shape)
            else:
                # The target's normaliser is 1 (RP3BETA_BETA is 0), as above.
                source, _ = rp3beta_normalisers(distinct.astype(np.float64))
                weights = sp.csr_matrix(
                    sp.diags(source) @ sp.csr_matrix((walk, (a, b)), shape=shape)
                )
            kind_out = _KEPT_PART + number
            out.append(_kept_rows(kind_out, block, lo, weights, both, min_users, neighbours))
    return _concat(out)


if NORM_TARGET != 0.0 or RP3BETA_BETA != 0.0:  # pragma: no cover - a guard for whoever
    # changes the defaults
    raise ImportError(
        "ray_engine divides by the source's count only: NORM_TARGET and RP3BETA_BETA must be 0"
    )


def assemble(
    blocks: list[Columns], n_items: int, min_users: int, parts: tuple[str, ...]
) -> PrivateAggregates:
    """The driver's part: the kept pairs as matrices, the item counts as arrays."""
    rows = _concat(blocks) if blocks else _rows(_USERS, *(np.zeros(0, np.int64),) * 2)
    kind = rows["kind"]
    items = kind == _ITEM

    def matrix(of: int) -> sp.csr_matrix:
        kept = kind == of
        return sp.csr_matrix(
            (rows["w"][kept], (rows["a"][kept], rows["b"][kept])), shape=(n_items, n_items)
        )

    counts = np.zeros(n_items, np.int64)
    users = np.zeros(n_items, np.int64)
    counts[rows["a"][items]] = rows["c"][items]
    users[rows["a"][items]] = rows["u"][items]
    return PrivateAggregates(
        matrix(_PAIR),
        private_popularity(counts, users, min_users),
        users,
        int(rows["u"][kind == _USERS].sum()),
        RECENCY_DECAY,
        {name: matrix(_KEPT_PART + number) for number, name in enumerate(parts)},
    )
