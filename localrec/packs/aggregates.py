"""What a pack may say about people: aggregates over at least K distinct users, nothing less.

From the training sequences, a pack keeps item-kNN's forward weights sim(a, b) only for the
pairs (a before b) that K or more distinct users made, at most N per item (the heaviest);
the weights of the hybrid's order-blind parts (co-occurrence, RP3beta) it uses only for
the pairs that K or more distinct users both had, at most N per item;
item popularity only for items K or more users had (else 0); and the adapter's learned
rows (offset, input vector, bias) only for such items. An item below K is served as a new
item is: from its text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from localrec.scoring.adapter import TrainedAdapter, predict_unseen_bias
from localrec.scoring.item_models import item_item_part, keep_heaviest
from localrec.scoring.itemknn import ItemKNNScorer, cooccurrence_counts, item_counts

__all__ = [
    "DEFAULT_MIN_USERS",
    "DEFAULT_NEIGHBOURS",
    "PrivateAggregates",
    "item_users",
    "local_aggregates",
    "pair_users",
    "private_adapter",
    "private_popularity",
    "private_similarity",
]

ItemArray = npt.NDArray[np.integer[Any]]
# Chosen on Food-Kitchen (the README's privacy/utility table): the largest K that costs
# at most 3% relative NDCG@10 in every cell.
DEFAULT_MIN_USERS = 2
# Neighbours kept per item: the heaviest N forward weights (0 keeps all).
DEFAULT_NEIGHBOURS = 100
# Users per chunk when pairs are counted: every pair of a user is deduplicated in one go.
_USER_CHUNK = 4096


@dataclass(frozen=True)
class PrivateAggregates:
    """What a pack keeps of the training sequences, however it was counted."""

    similarity: sp.csr_matrix  # sim(a, b) of pairs K or more users made, N per item
    popularity: np.ndarray  # occurrences, 0 for items fewer than K users had
    users: np.ndarray  # distinct users per item (what prunes the adapter's rows)
    sequences: int  # how many users' sequences were counted
    recency_decay: float  # item-kNN's, for the device's scoring
    # The hybrid's order-blind parts by name: W(a, b) of pairs K or more users both had,
    # N per item.
    parts: dict[str, sp.csr_matrix] = field(default_factory=dict)


def local_aggregates(
    sequences: Sequence[ItemArray],
    n_items: int,
    min_users: int,
    neighbours: int,
    parts: Sequence[str] = (),
) -> PrivateAggregates:
    """The aggregates counted in this process, with the order-blind `parts` named
    (`ray_engine.RayEngine.aggregates` counts the same on a Ray cluster)."""
    users = item_users(sequences, n_items)
    knn = ItemKNNScorer(sequences, n_items)
    kept_parts = {}
    if parts:
        both = cooccurrence_counts(sequences, n_items)  # the users who had both items
        kept_parts = {
            name: private_similarity(
                item_item_part(name, sequences, n_items).similarity, both, min_users, neighbours
            )
            for name in parts
        }
    return PrivateAggregates(
        private_similarity(knn.similarity, pair_users(sequences, n_items), min_users, neighbours),
        private_popularity(item_counts(sequences, n_items), users, min_users),
        users,
        len(sequences),
        knn.recency_decay,
        kept_parts,
    )


def item_users(sequences: Sequence[ItemArray], n_items: int) -> np.ndarray:
    """How many distinct users had each item."""
    if not sequences:
        return np.zeros(n_items, dtype=np.int64)
    flat = np.concatenate([np.unique(np.asarray(s, dtype=np.int64)) for s in sequences])
    return np.bincount(flat, minlength=n_items).astype(np.int64)


def pair_users(sequences: Sequence[ItemArray], n_items: int) -> sp.csr_matrix:
    """U[a, b] = how many distinct users had b at some point after a (b may be a again:
    item-kNN counts a repeat as a pair too)."""
    total = sp.csr_matrix((n_items, n_items), dtype=np.int64)
    for start in range(0, len(sequences), _USER_CHUNK):
        codes = []
        for s in sequences[start : start + _USER_CHUNK]:
            s = np.asarray(s, dtype=np.int64)
            if len(s) < 2:
                continue
            i, j = np.triu_indices(len(s), k=1)
            codes.append(np.unique(s[i] * n_items + s[j]))  # each pair once per user
        if not codes:
            continue
        keys, counts = np.unique(np.concatenate(codes), return_counts=True)
        total = total + sp.csr_matrix(
            (counts, (keys // n_items, keys % n_items)), shape=(n_items, n_items), dtype=np.int64
        )
    return sp.csr_matrix(total)


def private_similarity(
    similarity: sp.spmatrix, users: sp.csr_matrix, min_users: int, neighbours: int
) -> sp.csr_matrix:
    """sim(a, b) where at least `min_users` users made the pair, the heaviest `neighbours`
    per item a (0: all of them). Also for the hybrid's order-blind parts (co-occurrence,
    RP3beta), with `users` the users who had both items (`cooccurrence_counts`)."""
    sim = sp.csr_matrix(similarity, dtype=np.float64)
    sim.sort_indices()
    allowed = sp.csr_matrix(users >= min_users, dtype=np.float64)
    kept = sp.csr_matrix(sim.multiply(allowed))
    kept.eliminate_zeros()
    if neighbours <= 0:
        return kept
    return keep_heaviest(kept, neighbours)


def private_popularity(counts: np.ndarray, users: np.ndarray, min_users: int) -> np.ndarray:
    """Item occurrence counts, 0 where fewer than `min_users` users had the item."""
    out: np.ndarray = np.where(users >= min_users, counts, 0).astype(np.int64)
    return out


def private_adapter(
    adapter: TrainedAdapter,
    users: np.ndarray,
    min_users: int,
    vectors: np.ndarray,
    item_domains: np.ndarray,
) -> TrainedAdapter:
    """The adapter without the learned rows of items fewer than `min_users` users had: their
    offsets and input vectors are dropped, their bias is predicted from their text as a
    new item's is (0 in other domains' adapters, which never rank them), and they count as
    never seen. `adapter` is aligned to `users`' order."""
    pruned = adapter.seen & (users < min_users)
    if not pruned.any():
        return adapter
    seen = adapter.seen & ~pruned
    domains = {}
    for d, a in adapter.domains.items():
        offsets = a.offsets.copy()
        offsets[pruned] = 0
        inputs = None
        if a.inputs is not None:
            inputs = a.inputs.copy()
            inputs[pruned] = 0
        own = np.flatnonzero(item_domains == d)
        items = own[seen[own] | pruned[own]]
        bias = predict_unseen_bias(vectors, a.bias.copy(), seen, items)
        # Outside its domain an adapter never ranks an item, and training left those biases
        # at their start, log(1 + count): they would tell how often the item occurred.
        bias[pruned & (item_domains != d)] = 0.0
        domains[d] = replace(a, offsets=offsets, inputs=inputs, bias=bias)
    counts = None
    if adapter.counts is not None:
        counts = np.where(pruned, 0, adapter.counts).astype(np.int64)
    return replace(adapter, domains=domains, seen=seen, counts=counts)
