"""What scorers keep per candidate array (`scoring.memo`): kept answers are the ones
computed anew, for every scorer of the hybrid, whatever the order of the calls."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from localrec.scoring.adapter import AdapterConfig
from localrec.scoring.history import History
from localrec.scoring.hybrid import HybridModel
from localrec.scoring.itemknn import ItemKNNScorer, cooccurrence_scorer
from localrec.scoring.memo import CandidateMemo
from localrec.tuning.train import train_adapter
from tests.synthetic import synthetic


def test_memo_keeps_by_value_and_copies_its_keys() -> None:
    memo: CandidateMemo[int] = CandidateMemo(size=2)
    made: list[int] = []

    def make(value: int) -> Callable[[], int]:
        def made_now() -> int:
            made.append(value)
            return value

        return made_now

    key = np.array([[1, 2, 3]])
    assert memo.get(key, make(1)) == 1
    assert memo.get(np.array([[1, 2, 3]]), make(99)) == 1  # equal, another array
    key[0, 0] = 7  # the caller reuses its array: the kept key is a copy
    assert memo.get(key, make(2)) == 2
    assert memo.get(np.array([[1, 2, 3]]), make(99)) == 1
    assert memo.get(np.array([1, 2, 3]), make(3)) == 3  # same values, another shape
    assert memo.get(np.array([[7, 2, 3]]), make(99)) == 2
    assert memo.get(np.array([[1, 2, 3]]), make(4)) == 4  # kept first, so dropped first
    assert made == [1, 2, 3, 4]
    big: CandidateMemo[int] = CandidateMemo(cells=4)
    assert big.get(np.arange(5), make(5)) == 5
    assert big.get(np.arange(5), make(6)) == 6  # more than `cells` candidates: not kept
    assert big.get(np.arange(4), make(7)) == 7
    assert big.get(np.arange(4), make(99)) == 7


def calls(rng: np.random.Generator) -> list[np.ndarray]:
    """Candidate arrays in an order that hits and misses: whole domains, pools, batches."""
    whole = np.arange(60, 120)[None, :]
    pool = np.sort(rng.choice(np.arange(60, 120), size=12, replace=False))[None, :]
    batch = np.stack([rng.choice(np.arange(60, 120), size=10, replace=False) for _ in range(3)])
    return [whole, whole, pool, whole.copy(), batch, pool, batch.copy(), whole]


def test_item_item_scorers_keep_the_same_numbers() -> None:
    dataset, _ = synthetic()
    rng = np.random.default_rng(5)
    kept = ItemKNNScorer(dataset.train, 120)
    kept_pairs = cooccurrence_scorer(dataset.train, 120)
    for candidates in calls(rng):
        histories = [np.array([3, 7]), np.array([61]), np.array([], dtype=np.int64)]
        histories = histories[: len(candidates)]
        fresh = ItemKNNScorer(dataset.train, 120)
        np.testing.assert_array_equal(
            kept.score(histories, candidates, 1), fresh.score(histories, candidates, 1)
        )
        np.testing.assert_array_equal(
            kept.two_hop(histories, candidates), fresh.two_hop(histories, candidates)
        )
        np.testing.assert_array_equal(
            kept_pairs.score(histories, candidates, 1),
            cooccurrence_scorer(dataset.train, 120).score(histories, candidates, 1),
        )


def test_the_hybrid_keeps_the_same_numbers() -> None:
    dataset, vectors = synthetic()
    config = AdapterConfig(dim=8, epochs=1, negatives=20, min_pairs=10)
    adapter = train_adapter(dataset, vectors, "fake", [str(i) for i in range(120)], config)
    part = adapter.domains[1]
    part.cf_weights = {"mixed": {"itemknn": 1.0, "walk": 0.5}, "cross": {"walk": 1.0}}
    part.popularity_weight = {"mixed": -0.2, "cross": 0.3}
    part.rare_weight = 2.0
    adapter.counts = np.arange(120) % 5  # some rare, some unseen, some common candidates

    def model() -> HybridModel:
        return HybridModel.over_sequences(adapter, vectors, dataset.domains, dataset.train)

    kept = model()
    rng = np.random.default_rng(6)
    for candidates in calls(rng):
        histories = [History.of_rows([3, 7]), History.of_rows([61, 2]), History.of_rows([5])]
        histories = histories[: len(candidates)]
        np.testing.assert_array_equal(
            kept.score(histories, candidates, 1), model().score(histories, candidates, 1)
        )


def test_history_matrix_is_the_coo_route_bit_for_bit() -> None:
    """Item-kNN's (histories x items) recency weights, built as CSR straight away: the
    matrix scipy's COO route gives, repeats summed in the same order."""
    import scipy.sparse as sp

    from localrec.scoring.itemknn import _history_matrix
    from localrec.weighting import per_event_decay

    rng = np.random.default_rng(4)
    histories = [rng.integers(0, 30, size=int(rng.integers(0, 25))) for _ in range(40)]
    got = _history_matrix(histories, 30, 0.8)
    rows = np.concatenate([np.full(len(h), r) for r, h in enumerate(histories)])
    ages = np.concatenate([np.arange(len(h))[::-1] for h in histories])
    weights = per_event_decay(ages, 0.8)
    want = sp.csr_matrix((weights, (rows, np.concatenate(histories))), shape=(40, 30))
    assert got.has_canonical_format and want.has_canonical_format
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data, want.data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_product_is_scipys_product_bit_for_bit(dtype: type) -> None:
    """Item-kNN's profile x columns product in numpy alone: scipy's sums in scipy's order,
    for profiles of any row order (a walked profile's are not sorted), in blocks."""
    import scipy.sparse as sp

    from localrec.scoring.itemknn import _dense_product

    columns = sp.random(60, 25, density=0.3, format="csr", dtype=dtype, random_state=1)
    profile = sp.random(7, 60, density=0.2, format="csr", random_state=2)
    shuffled = profile.copy()
    rng = np.random.default_rng(3)
    for r in range(7):  # the same entries, stored in another order
        lo, hi = shuffled.indptr[r], shuffled.indptr[r + 1]
        order = lo + rng.permutation(hi - lo)
        shuffled.indices[lo:hi], shuffled.data[lo:hi] = profile.indices[order], profile.data[order]
    for matrix in (profile, shuffled):
        want = (matrix @ columns).toarray()
        np.testing.assert_array_equal(_dense_product(matrix, 0, 7, columns), want)
        np.testing.assert_array_equal(_dense_product(matrix, 2, 5, columns), want[2:5])
    empty = sp.csr_matrix((3, 60))
    np.testing.assert_array_equal(_dense_product(empty, 0, 3, columns), np.zeros((3, 25)))


def test_a_batch_gathers_the_bits_each_row_alone_gets() -> None:
    """Many rows go through scipy's product, one row through numpy's: a validation batch
    and a served list of the same history score the same bits, walk included."""
    data, _ = synthetic(seed=5)
    knn = ItemKNNScorer(data.train, data.n_items)
    rng = np.random.default_rng(11)
    histories = [np.asarray(s[:-1]) for s in data.train[:40] if len(s) > 1]
    candidates = rng.integers(0, data.n_items, size=(len(histories), 30))
    batch = knn.two_hop(histories, candidates), knn.score(histories, candidates, 0)
    for i, history in enumerate(histories):
        alone = knn.two_hop([history], candidates[i : i + 1])
        np.testing.assert_array_equal(alone[0], batch[0][i])
        np.testing.assert_array_equal(
            knn.score([history], candidates[i : i + 1], 0)[0], batch[1][i]
        )
    assert np.count_nonzero(batch[0]) > 0 and np.count_nonzero(batch[1]) > 0
