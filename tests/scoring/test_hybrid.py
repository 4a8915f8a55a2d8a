"""The hybrid rule (HybridModel): standardised sums, rare and cold users, one rule for
recommend and eval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from localrec.embedding.llama_encoder import normalise_rows
from localrec.evaluation.scorers import EmbeddingScorer, HybridRow, TunedRow
from localrec.scoring.adapter import AdapterConfig
from localrec.scoring.history import History
from localrec.scoring.hybrid import HybridModel, hybrid_scores
from localrec.tuning.storage import store_adapter
from localrec.tuning.train import train_adapter
from tests.synthetic import purchases, synthetic, tuned_database


def test_eval_scores_a_domain_without_adapter_with_zero_shot_text() -> None:
    """Domain 0 has no adapter: the tuned and hybrid rows rank it by zero-shot text, as
    `recommend` does; domain 1 is ranked by its adapter."""
    dataset, vectors = synthetic()
    config = AdapterConfig(dim=8, epochs=1, negatives=20, min_pairs=10)
    adapter = train_adapter(
        dataset, vectors, "fake", [str(i) for i in range(120)], config, only_domains=[1]
    )
    model = HybridModel.over_sequences(adapter, vectors, dataset.domains, dataset.train)
    text = EmbeddingScorer("z", "zero-shot", vectors, dataset.domains)
    candidates = np.arange(0, 60)[None, :]
    for row in (TunedRow("t", model), HybridRow("h", model)):
        np.testing.assert_array_equal(
            row.score([np.array([61])], candidates, 0),
            text.score([np.array([61])], candidates, 0),
        )
        assert not np.allclose(
            row.score([np.array([1])], candidates + 60, 1),
            text.score([np.array([1])], candidates + 60, 1),
        )


def test_hybrid_gives_rarely_seen_candidates_their_own_weight() -> None:
    a = np.array([[3.0, 2.0, 1.0, 0.0]])
    k = np.array([[0.0, 0.0, 0.0, 10.0]])  # only candidate 3 has item-kNN evidence
    rare = np.array([[False, False, False, True]])
    assert hybrid_scores(a, k, 0.25).argmax() == 0
    np.testing.assert_array_equal(hybrid_scores(a, k, 0.25, rare, None), hybrid_scores(a, k, 0.25))
    boosted = hybrid_scores(a, k, 0.25, rare, 2.0)
    assert boosted.argmax() == 3
    np.testing.assert_allclose(boosted[0, :3], hybrid_scores(a, k, 0.25)[0, :3])


def test_hybrid_is_a_sum_of_standardised_scores() -> None:
    a = np.array([[1.0, 2.0, 3.0]])
    k = np.array([[30.0, 20.0, 10.0]])
    assert hybrid_scores(a, k, 0.0).argmax() == 2
    assert hybrid_scores(a, k, 1e6).argmax() == 0
    np.testing.assert_allclose(hybrid_scores(a, k, 1.0), [[0.0, 0.0, 0.0]], atol=1e-9)


def test_recommender_scores_like_the_adapter(tmp_path: Path) -> None:
    """The API's tuned path (one user, from stored events) and the batch scorer used by
    eval are two implementations of one model: they must give the same scores."""
    from localrec.recommend.recommender import Recommender
    from tests.fakes import FakeEncoder

    events: list[dict[str, object]] = [
        {"user": "u", "item": "3", "action": "purchase", "time": 1},
        {"user": "u", "item": "7", "action": "purchase", "time": 2},
    ]
    db, adapter, vectors, dataset = tuned_database(tmp_path, events)
    assert adapter.domains[1].inputs is not None
    candidates = np.arange(60, 120)[None, :]
    expected = adapter.scores([History.of_rows([3, 7])], candidates, 1, vectors, dataset.domains)[0]
    with Recommender(db, encoder=FakeEncoder(), user_vector="tuned") as rec:
        got = rec.recommend("u", domain="b", k=60, include_seen=True)
    assert got.user_vector == "tuned"
    scores = {r.item_id: r.score for r in got}
    np.testing.assert_allclose(
        [scores[str(i)] for i in range(60, 120)], expected, rtol=1e-2, atol=1e-3
    )
    assert got.items[0].item_id == str(60 + int(np.argmax(expected)))


@pytest.mark.parametrize("two_hop_weight", [0.0, 1.0])
def test_recommender_hybrid_scores_like_eval_with_a_rare_weight(
    tmp_path: Path, two_hop_weight: float
) -> None:
    """The hybrid of both paths, with rarely seen candidates weighted apart (and with or
    without item-kNN's two-step walk): the same scores, and the rare weight moves the
    rarely seen items that item-kNN backs."""

    from localrec.recommend.recommender import Recommender
    from tests.fakes import FakeEncoder

    # u has 3 then 7; others went 3 -> 64 and 7 -> 71 (an even, "rare" item, and an odd one).
    sequences = [[3, 7], [3, 64], [7, 71], [3, 64]]
    events = purchases(sequences)
    db, adapter, vectors, dataset = tuned_database(tmp_path, events, 5.0, two_hop_weight)
    rows = [np.array(s) for s in sequences]
    hybrid = HybridRow("h", HybridModel.over_sequences(adapter, vectors, dataset.domains, rows))
    candidates = np.arange(60, 120)[None, :]
    expected = hybrid.score([np.array([3, 7])], candidates, 1)[0]
    with Recommender(db, encoder=FakeEncoder(), user_vector="hybrid") as rec:
        got = rec.recommend("u", domain="b", k=60, include_seen=True)
    scores = {r.item_id: r.score for r in got}
    np.testing.assert_allclose(
        [scores[str(i)] for i in range(60, 120)], expected, rtol=1e-2, atol=1e-3
    )
    # Only the rare weight tells 64 and 71 apart from the setting's weight.
    adapter.domains[1].rare_weight = None
    plain = hybrid.score([np.array([3, 7])], candidates, 1)[0]
    boost = expected - plain
    assert boost[64 - 60] > 1.0 and abs(boost[71 - 60]) < 1e-9
    rare_without_knn = [i - 60 for i in range(60, 120, 2) if i != 64]
    assert (boost[rare_without_knn] <= 0).all()  # z of a zero kNN score is below the mean


def test_a_cold_user_blends_the_adapter_with_zero_shot_text(tmp_path: Path) -> None:
    """A history of items never seen in training gets z(tuned) + w * z(zero-shot text), the
    same in eval and in the Recommender; a history CF knows keeps the CF hybrid."""
    from localrec.recommend.recommender import Recommender
    from localrec.store.db import Store
    from tests.fakes import FakeEncoder

    sequences = [[3, 7], [3, 64], [7, 71], [3, 64]]
    events = purchases(sequences)
    db, adapter, vectors, dataset = tuned_database(tmp_path, events)
    adapter.domains[1].cold_weight = {"mixed": 1.0, "cross": 1.0}
    adapter.seen[[3, 7]] = False  # u's two items: nothing of u was seen in training
    with Store(db) as store:
        store_adapter(store, adapter)
    rows = [np.array(s) for s in sequences]
    model = HybridModel.over_sequences(adapter, vectors, dataset.domains, rows)
    tuned, hybrid = TunedRow("t", model), HybridRow("h", model)
    zero_shot = EmbeddingScorer("z", "zero-shot", vectors, dataset.domains)
    candidates = np.arange(60, 120)[None, :]
    cold, warm = [np.array([3, 7])], [np.array([3, 64])]
    assert adapter.cold(cold[0]) and not adapter.cold(warm[0])
    expected = hybrid.score(cold, candidates, 1)
    blend = hybrid_scores(
        tuned.score(cold, candidates, 1), zero_shot.score(cold, candidates, 1), 1.0
    )
    np.testing.assert_allclose(expected, blend, rtol=1e-5, atol=1e-6)  # float32 text scores
    warm_scores = hybrid.score(warm, candidates, 1)
    # At text weight 0 the cold user gets the adapter alone (on the hybrid's scale).
    adapter.domains[1].cold_weight = {"mixed": 0.0, "cross": 0.0}
    alone = hybrid.score(cold, candidates, 1)
    assert np.abs(expected - alone).max() > 0.1
    z = hybrid_scores(tuned.score(cold, candidates, 1), alone, 0.0)
    np.testing.assert_allclose(alone, z, rtol=1e-5)
    # A warm history is scored as before: the text weight plays no part.
    np.testing.assert_array_equal(hybrid.score(warm, candidates, 1), warm_scores)
    adapter.domains[1].cold_weight = {"mixed": 1.0, "cross": 1.0}
    with Recommender(db, encoder=FakeEncoder(), user_vector="hybrid") as rec:
        got = rec.recommend("u", domain="b", k=60, include_seen=True)
    scores = {r.item_id: r.score for r in got}
    np.testing.assert_allclose(
        [scores[str(i)] for i in range(60, 120)], expected[0], rtol=1e-2, atol=1e-3
    )


def test_aligned_follows_a_reordered_catalogue_and_keeps_the_rest() -> None:
    """A database whose items were re-ordered and grew after `tune`: scores of the known
    items are unchanged, the new item is unseen (text bias, no offset), and the adapter's
    record (weights, validation figures, dropped domains) survives the re-indexing."""
    from localrec.scoring.adapter import aligned

    dataset, vectors = synthetic()
    config = AdapterConfig(dim=8, epochs=1, negatives=20, min_pairs=10)
    ids = [str(i) for i in range(120)]
    adapter = train_adapter(dataset, vectors, "fake", ids, config)
    adapter.dropped["c"] = "a reason"
    # New catalogue: reversed, with one new target-domain item "new" at the front.
    order = ["new", *reversed(ids)]
    new_vector = normalise_rows(np.ones((1, 16), np.float32))
    moved_vectors = np.vstack([new_vector, vectors[::-1]])
    moved = aligned(adapter, {item: i for i, item in enumerate(order)}, moved_vectors)
    assert moved.item_ids == order and moved.dropped["c"] == "a reason"
    assert moved.dropped == adapter.dropped
    assert not moved.seen[0] and moved.seen[1:].tolist() == adapter.seen[::-1].tolist()
    assert moved.counts is not None and adapter.counts is not None
    assert moved.counts[0] == 0 and moved.counts[1:].tolist() == adapter.counts[::-1].tolist()
    a, b = adapter.domains[1], moved.domains[1]
    assert (b.hybrid_weight, b.epoch, b.valid_ndcg) == (a.hybrid_weight, a.epoch, a.valid_ndcg)
    assert (b.hybrid_ndcg, b.zero_shot_ndcg) == (a.hybrid_ndcg, a.zero_shot_ndcg)
    assert not b.offsets[0].any() and b.bias[0] != 0  # predicted from its text
    history = [History.of_rows([1, 2])]
    before = adapter.scores(history, np.arange(60, 120)[None, :], 1, vectors, dataset.domains)
    domains = np.concatenate([[1], dataset.domains[::-1]])
    # Item i sits at row 120 - i in the new order.
    after = moved.scores(
        [History.of_rows(120 - history[0].rows)],
        (120 - np.arange(60, 120))[None, :],
        1,
        moved_vectors,
        domains,
    )
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-5)
    assert aligned(moved, {item: i for i, item in enumerate(order)}, moved_vectors) is moved
