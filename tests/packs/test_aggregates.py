"""The K-user aggregates a pack may hold: distinct users per item and per forward pair, the
item-kNN weights of pairs K or more users made (the heaviest N per item), popularity of items
K or more users had, and the adapter without the learned rows of the other items."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from localrec.packs.aggregates import (
    item_users,
    pair_users,
    private_adapter,
    private_popularity,
    private_similarity,
)
from localrec.scoring.adapter import AdapterConfig, TrainedAdapter
from localrec.scoring.itemknn import ItemKNNScorer
from localrec.tuning.train import train_adapter
from tests.synthetic import synthetic


def seqs(*rows: list[int]) -> list[np.ndarray]:
    return [np.asarray(r, dtype=np.int64) for r in rows]


def test_a_user_counts_once_per_item_and_once_per_pair() -> None:
    """One user with a, b, a, b made (a, b) three times over and counts once; a second user
    with a, b makes it 2. Repeats are pairs too (a then a), and order matters: (b, a) was made
    by the first user only."""
    a, b, c = 0, 1, 2
    sequences = seqs([a, b, a, b], [a, b], [c])
    users = pair_users(sequences, 3).toarray()
    assert users.tolist() == [
        [1, 2, 0],  # (a, a) by the first user, (a, b) by both
        [1, 1, 0],  # (b, a) and (b, b) by the first user
        [0, 0, 0],  # c alone makes no pair
    ]
    assert item_users(sequences, 4).tolist() == [2, 2, 1, 0]


def test_pairs_are_counted_across_user_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Users are counted in chunks; a pair's users add up across them."""
    monkeypatch.setattr("localrec.packs.aggregates._USER_CHUNK", 2)
    sequences = seqs([0, 1], [0, 1, 0, 1], [1], [0, 1], [2, 0, 1])
    assert pair_users(sequences, 3)[0, 1] == 4
    assert pair_users(sequences, 3)[2, 0] == 1
    assert pair_users([], 3).nnz == 0 and item_users([], 3).tolist() == [0, 0, 0]


@pytest.mark.parametrize("k", [2, 3, 5])
def test_a_pair_needs_k_distinct_users(k: int) -> None:
    """(0, 1) is made by K - 1 users (one of them twice over), (2, 3) by K: item-kNN weighs
    both, the private weights keep only (2, 3), with item-kNN's weight unchanged."""
    sequences = seqs(*([[0, 1]] * (k - 2)), [0, 1, 0, 1], *([[2, 3]] * k))
    knn = ItemKNNScorer(sequences, 4).similarity
    users = pair_users(sequences, 4)
    assert users[0, 1] == k - 1 and users[2, 3] == k
    assert knn[0, 1] > 0 and knn[2, 3] > 0
    private = private_similarity(knn, users, min_users=k, neighbours=0)
    assert private[0, 1] == 0
    assert private[2, 3] == pytest.approx(knn[2, 3])
    assert private.nnz == 1
    # One user fewer needed, and (0, 1) is back.
    assert private_similarity(knn, users, min_users=k - 1, neighbours=0)[0, 1] == pytest.approx(
        knn[0, 1]
    )


@pytest.mark.parametrize(("n", "kept"), [(1, [3]), (2, [3, 1]), (3, [3, 1, 4]), (0, [3, 1, 4, 2])])
def test_top_n_keeps_the_heaviest_weights_per_row(n: int, kept: list[int]) -> None:
    """Row 0 weighs 1 < 2 < 3 < 4 as 0.1, 0.5, 0.9, 0.3; row 5 has one weight. N keeps the N
    heaviest of each row with their weights; 0 keeps all."""
    weights = {(0, 1): 0.5, (0, 2): 0.1, (0, 3): 0.9, (0, 4): 0.3, (5, 0): 0.7}
    rows, cols = zip(*weights, strict=True)
    sim = sp.csr_matrix((list(weights.values()), (rows, cols)), shape=(6, 6))
    users = sp.csr_matrix((np.full(len(weights), 10), (rows, cols)), shape=(6, 6))
    got = private_similarity(sim, users, min_users=2, neighbours=n)
    row = got.getrow(0)
    assert sorted(row.indices.tolist()) == sorted(kept)
    assert {int(c): float(w) for c, w in zip(row.indices, row.data, strict=True)} == {
        c: weights[(0, c)] for c in kept
    }
    assert got[5, 0] == pytest.approx(0.7)
    assert got.getrow(1).nnz == 0


def test_top_n_counts_only_the_pairs_k_users_made() -> None:
    """The heaviest pair of row 0 was made by one user: N = 1 keeps the heaviest of the rest,
    not an empty row."""
    sim = sp.csr_matrix(np.array([[0, 0.9, 0.4, 0.2], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    users = sp.csr_matrix(np.array([[0, 1, 3, 3], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    got = private_similarity(sim, users, min_users=2, neighbours=1)
    assert got.toarray()[0].tolist() == [0, 0, 0.4, 0]


def test_popularity_is_zero_for_items_fewer_than_k_users_had() -> None:
    counts = np.array([9.0, 4.0, 3.0, 2.0, 0.0])
    users = np.array([5, 2, 1, 1, 0])
    assert private_popularity(counts, users, 2).tolist() == [9, 4, 0, 0, 0]
    assert private_popularity(counts, users, 3).tolist() == [9, 0, 0, 0, 0]
    assert private_popularity(counts, users, 1).tolist() == [9, 4, 3, 2, 0]


# -- the adapter --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained() -> tuple[TrainedAdapter, np.ndarray, np.ndarray]:
    """An adapter trained on the synthetic catalogue (random unit vectors, no encoder), its
    vectors, and its items' domain numbers."""
    dataset, vectors = synthetic()
    ids = [str(i) for i in range(120)]
    config = AdapterConfig(
        dim=16, epochs=2, negatives=50, batch_size=128, learning_rate=0.02, min_pairs=10
    )
    adapter = train_adapter(dataset, vectors, "fake", ids, config)
    return adapter, vectors, dataset.domains.astype(np.int64)


# Items fewer than K = 2 users had: two of domain a (0-59), two of domain b (60-119).
PRUNED = [5, 17, 70, 101]


def _users(adapter: TrainedAdapter) -> np.ndarray:
    users = np.where(adapter.seen, 10, 0)
    users[PRUNED] = 1
    return users


def _ridge(vectors: np.ndarray, bias: np.ndarray, known: np.ndarray, rows: list[int]) -> np.ndarray:
    """The bias a text vector predicts: ridge regression (lambda 1, with an intercept) over
    the `known` items."""
    x = np.hstack([vectors[known], np.ones((len(known), 1))]).astype(np.float64)
    coef = np.linalg.solve(x.T @ x + np.eye(x.shape[1]), x.T @ bias[known].astype(np.float64))
    return np.hstack([vectors[rows], np.ones((len(rows), 1))]) @ coef


def test_the_private_adapter_forgets_only_the_rows_of_items_under_k(
    trained: tuple[TrainedAdapter, np.ndarray, np.ndarray],
) -> None:
    adapter, vectors, item_domains = trained
    assert adapter.seen[PRUNED].all() and list(adapter.domains) == [1]
    assert adapter.counts is not None
    users = _users(adapter)
    private = private_adapter(adapter, users, 2, vectors, item_domains)
    others = np.setdiff1d(np.arange(120), PRUNED)
    # The pruned items are unseen and uncounted; every other item is as it was.
    assert not private.seen[PRUNED].any()
    assert (private.seen[others] == adapter.seen[others]).all()
    assert private.counts is not None
    assert private.counts[PRUNED].tolist() == [0, 0, 0, 0]
    assert (private.counts[others] == adapter.counts[others]).all()
    for d, before in adapter.domains.items():
        after = private.domains[d]
        assert before.offsets[PRUNED].any() and not after.offsets[PRUNED].any()
        assert before.inputs is not None and after.inputs is not None
        assert before.inputs[PRUNED].any() and not after.inputs[PRUNED].any()
        np.testing.assert_array_equal(after.offsets[others], before.offsets[others])
        np.testing.assert_array_equal(after.inputs[others], before.inputs[others])
        np.testing.assert_array_equal(after.bias[others], before.bias[others])
        np.testing.assert_array_equal(after.proj, before.proj)
        np.testing.assert_array_equal(after.w_src, before.w_src)
        # The domain's own pruned items get the bias their text predicts from the items
        # still seen, as a new item's.
        own = [p for p in PRUNED if item_domains[p] == d]
        known = np.flatnonzero((item_domains == d) & private.seen)
        predicted = _ridge(vectors, before.bias, known, own)
        np.testing.assert_allclose(after.bias[own], predicted, rtol=1e-4, atol=1e-5)
        assert not np.allclose(after.bias[own], before.bias[own])
    # The adapter passed in is not changed.
    assert adapter.seen[PRUNED].all()


def test_with_no_item_under_k_the_adapter_is_kept_as_it_is(
    trained: tuple[TrainedAdapter, np.ndarray, np.ndarray],
) -> None:
    adapter, vectors, item_domains = trained
    users = np.where(adapter.seen, 10, 0)
    assert private_adapter(adapter, users, 2, vectors, item_domains) is adapter


def test_what_the_private_adapter_keeps_does_not_depend_on_the_rows_it_drops(
    trained: tuple[TrainedAdapter, np.ndarray, np.ndarray],
) -> None:
    """Two adapters that differ only in the learned rows (bias, offsets, inputs) of items
    under K must give the same private adapter: else what a pack holds says something about
    those items' few users."""
    adapter, vectors, item_domains = trained
    users = _users(adapter)
    other_domains = {}
    for d, a in adapter.domains.items():
        assert a.inputs is not None
        bias, offsets, inputs = a.bias.copy(), a.offsets.copy(), a.inputs.copy()
        bias[PRUNED] += 3.0
        offsets[PRUNED] += 0.5
        inputs[PRUNED] -= 0.5
        other_domains[d] = replace(a, bias=bias, offsets=offsets, inputs=inputs)
    other = replace(adapter, domains=other_domains)
    first = private_adapter(adapter, users, 2, vectors, item_domains)
    second = private_adapter(other, users, 2, vectors, item_domains)
    for d in adapter.domains:
        np.testing.assert_array_equal(first.domains[d].offsets, second.domains[d].offsets)
        np.testing.assert_array_equal(first.domains[d].inputs, second.domains[d].inputs)
        np.testing.assert_array_equal(first.domains[d].bias, second.domains[d].bias)
