"""The trained adapter: gradients, a synthetic task it must solve, determinism, rails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from localrec.data.dataset import SequenceDataset
from localrec.embedding.llama_encoder import normalise_rows
from localrec.errors import TrainingError
from localrec.evaluation.scorers import EmbeddingScorer, HybridRow, TunedRow
from localrec.scoring.adapter import AdapterConfig, TrainedAdapter
from localrec.scoring.history import History
from localrec.scoring.hybrid import HybridModel, combine_cf, hybrid_scores
from localrec.scoring.itemknn import ItemKNNScorer
from localrec.tuning.selection import Validation, _best_rare_weight, _Blend, _not_better
from localrec.tuning.storage import (
    adapter_bytes,
    adapter_from_stored,
    adapter_meta,
    store_adapter,
)
from localrec.tuning.train import batch_loss_and_grads, build_pairs, train_adapter


def _params(rng: np.random.Generator, n_items: int, dim: int, d: int) -> dict[str, np.ndarray]:
    return {
        "w_src": rng.standard_normal((d, dim)),
        "w_same": rng.standard_normal((d, dim)),
        "proj": rng.standard_normal((d, dim)),
        "offsets": rng.standard_normal((n_items, d)) * 0.1,
        "bias": rng.standard_normal(n_items) * 0.1,
        "inputs": rng.standard_normal((n_items, d)) * 0.1,
    }


def test_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    n_items, dim, d, batch = 30, 6, 3, 4
    params = _params(rng, n_items, dim, d)
    vectors = rng.standard_normal((n_items, dim))
    m_src, m_same = rng.standard_normal((batch, dim)), rng.standard_normal((batch, dim))
    targets = np.array([1, 2, 3, 2])
    negatives = np.array([5, 6, 7, 8, 2, 9])  # 2 is also a target: masked for its own rows
    # Recency weights over history items 10..14 (the learned input vectors' rows).
    history = sp.csr_matrix(
        (
            [0.5, 0.5, 1.0, 0.25, 0.75, 1.0],
            ([0, 0, 1, 2, 2, 3], [10, 11, 12, 10, 13, 14]),
        ),
        shape=(batch, n_items),
    )
    loss, grads = batch_loss_and_grads(
        params, m_src, m_same, vectors, targets, negatives, 0.01, history
    )

    def loss_at(name: str, index: tuple[int, ...], eps: float) -> float:
        changed = {k: v.copy() for k, v in params.items()}
        changed[name][index] += eps
        value, _ = batch_loss_and_grads(
            changed, m_src, m_same, vectors, targets, negatives, 0.0, history
        )
        return value

    for name, index in [
        ("w_src", (0, 1)),
        ("w_same", (2, 5)),
        ("proj", (1, 3)),
        ("offsets", (6, 2)),
        ("bias", (2,)),
        ("bias", (9,)),
        ("inputs", (10, 1)),
        ("inputs", (13, 2)),
    ]:
        eps = 1e-6
        numeric = (loss_at(name, index, eps) - loss_at(name, index, -eps)) / (2 * eps)
        grad = grads[name]
        if isinstance(grad, tuple):
            rows, values = grad
            row = int(np.flatnonzero(rows == index[0])[0])
            analytic = values[(row, *index[1:])]
            if name in ("offsets", "inputs"):  # the decay is in the gradient, not the loss
                analytic -= 0.01 * params[name][index]
        else:
            analytic = grad[index]
        assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-7), (name, index)
    assert np.isfinite(loss)


def _synthetic(seed: int = 0) -> tuple[SequenceDataset, np.ndarray]:
    """Two domains of 60 items; after source item k users always take target item k."""
    rng = np.random.default_rng(seed)
    n = 60
    vectors = normalise_rows(rng.standard_normal((2 * n, 16)).astype(np.float32))
    domains = np.array([0] * n + [1] * n, dtype=np.int8)

    def user() -> np.ndarray:
        k = int(rng.integers(0, n))
        return np.array([int(rng.integers(0, n)), k, n + k], dtype=np.int32)

    train = [user() for _ in range(3000)]
    dataset = SequenceDataset(
        root=Path("synthetic"),
        item_ids=np.arange(2 * n, dtype=np.int64),
        domains=domains,
        domain_names=("a", "b"),
        titles=[f"item {i}" for i in range(2 * n)],
        attributes=[""] * (2 * n),
        train=train,
        valid=[user() for _ in range(200)],
        test=[user() for _ in range(200)],
    )
    return dataset, vectors


def test_recovers_a_known_mapping() -> None:
    dataset, vectors = _synthetic()
    config = AdapterConfig(
        dim=16, epochs=6, negatives=50, batch_size=128, learning_rate=0.02, min_pairs=10
    )
    adapter = train_adapter(dataset, vectors, "fake", [str(i) for i in range(120)], config)
    target = adapter.domains[1]
    assert target.valid_ndcg["mixed"] > 0.9  # the mapping is learned, near perfectly
    histories = [History.of_rows([3, 7]), History.of_rows([12])]
    candidates = np.tile(np.arange(60, 120), (2, 1))
    scores = adapter.scores(histories, candidates, 1, vectors, dataset.domains)
    assert scores[0].argmax() == 7 and scores[1].argmax() == 12


def test_same_seed_same_bytes() -> None:
    dataset, vectors = _synthetic()
    config = AdapterConfig(dim=8, epochs=2, negatives=20, batch_size=256, min_pairs=10, seed=5)
    ids = [str(i) for i in range(120)]
    first = adapter_bytes(train_adapter(dataset, vectors, "fake", ids, config))
    second = adapter_bytes(train_adapter(dataset, vectors, "fake", ids, config))
    other = train_adapter(
        dataset, vectors, "fake", ids, AdapterConfig(**{**config.__dict__, "seed": 6})
    )
    assert first == second and first != adapter_bytes(other)


def test_stored_adapter_round_trips() -> None:
    dataset, vectors = _synthetic()
    config = AdapterConfig(dim=8, epochs=1, negatives=20, min_pairs=10)
    adapter = train_adapter(dataset, vectors, "fake", [str(i) for i in range(120)], config)
    again = adapter_from_stored(adapter_meta(adapter), adapter_bytes(adapter))
    assert again.counts is not None and adapter.counts is not None
    np.testing.assert_array_equal(again.counts, adapter.counts)
    assert [(a.rare_weight, a.two_hop_weight, a.cold_weight) for a in again.domains.values()] == [
        (a.rare_weight, a.two_hop_weight, a.cold_weight) for a in adapter.domains.values()
    ]
    for domain in again.domains.values():
        assert set(domain.two_hop_weight) == set(domain.cold_weight) == {"mixed", "cross"}
    candidates = np.tile(np.arange(60, 120), (1, 1))
    a = adapter.scores([History.of_rows([1, 2])], candidates, 1, vectors, dataset.domains)
    b = again.scores([History.of_rows([1, 2])], candidates, 1, vectors, dataset.domains)
    np.testing.assert_allclose(a, b, rtol=1e-2, atol=1e-3)  # float16 offsets


def test_an_adapter_stored_before_rare_two_hop_and_cold_weights_loads_without_them() -> None:
    import io

    dataset, vectors = _synthetic()
    config = AdapterConfig(dim=8, epochs=1, negatives=20, min_pairs=10)
    adapter = train_adapter(dataset, vectors, "fake", [str(i) for i in range(120)], config)
    arrays = dict(np.load(io.BytesIO(adapter_bytes(adapter))))
    del arrays["counts"]
    old_payload = io.BytesIO()
    np.savez(old_payload, **arrays)  # type: ignore[arg-type]
    meta = adapter_meta(adapter)
    for info in meta["domains"].values():
        del info["rare_weight"], info["two_hop_weight"], info["cold_weight"]
    old = adapter_from_stored(meta, old_payload.getvalue())
    assert old.counts is None and not old.rare(np.arange(120)).any()
    assert all(
        a.rare_weight is None and a.two_hop_weight == a.cold_weight == {}
        for a in old.domains.values()
    )


def test_too_little_data_is_refused() -> None:
    dataset, vectors = _synthetic()
    small = SequenceDataset(
        root=Path("small"),
        item_ids=dataset.item_ids,
        domains=dataset.domains,
        domain_names=dataset.domain_names,
        titles=dataset.titles,
        attributes=dataset.attributes,
        train=dataset.train[:50],
        valid=dataset.valid,
        test=dataset.test,
    )
    # Neither domain has enough: nothing is kept, and the message says why for each.
    with pytest.raises(TrainingError, match="only 50 training interactions end in 'a'") as info:
        train_adapter(small, vectors, "fake", [str(i) for i in range(120)], AdapterConfig())
    assert "only 50 training interactions end in 'b'" in str(info.value)
    assert "Keep using the zero-shot recommendations" in str(info.value)


def test_a_domain_with_too_little_data_is_left_to_zero_shot() -> None:
    from dataclasses import replace

    dataset, vectors = _synthetic()
    # 3,000 training pairs end in 'a' and 3,500 in 'b': 500 more users who go a_k -> b_k.
    extra = [np.array([k % 60, 60 + k % 60], dtype=np.int32) for k in range(500)]
    dataset = replace(dataset, train=[*dataset.train, *extra])
    config = AdapterConfig(
        dim=16, epochs=3, negatives=50, batch_size=128, learning_rate=0.02, min_pairs=3200
    )
    adapter = train_adapter(dataset, vectors, "fake", [str(i) for i in range(120)], config)
    assert set(adapter.domains) == {1}
    assert adapter.dropped == {
        "a": "only 3000 training interactions end in 'a'; an adapter needs at least 3200, "
        "or it would make results worse"
    }
    again = adapter_from_stored(adapter_meta(adapter), adapter_bytes(adapter))
    assert again.dropped == adapter.dropped and set(again.domains) == {1}


def test_an_adapter_that_cannot_beat_zero_shot_is_not_kept() -> None:
    """When text alone already ranks the target first (target k has the same text as the
    source item k), the learned hybrid cannot do better, so it is refused, not stored."""
    dataset, vectors = _synthetic()
    same_text = vectors.copy()
    same_text[60:] = vectors[:60]
    config = AdapterConfig(dim=8, epochs=2, negatives=20, batch_size=256, min_pairs=10)
    with pytest.raises(TrainingError, match=r"b: on the validation split the tuned hybrid") as e:
        train_adapter(
            dataset, same_text, "fake", [str(i) for i in range(120)], config, only_domains=[1]
        )
    assert "for zero-shot text; it would make results worse" in str(e.value)


def test_eval_scores_a_domain_without_adapter_with_zero_shot_text() -> None:
    """Domain 0 has no adapter: the tuned and hybrid rows rank it by zero-shot text, as
    `recommend` does; domain 1 is ranked by its adapter."""
    dataset, vectors = _synthetic()
    config = AdapterConfig(dim=8, epochs=1, negatives=20, min_pairs=10)
    adapter = train_adapter(
        dataset, vectors, "fake", [str(i) for i in range(120)], config, only_domains=[1]
    )
    model = HybridModel(adapter, vectors, dataset.domains, ItemKNNScorer(dataset.train, 120))
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


def test_pairs_are_every_prefix_ending_in_the_domain() -> None:
    domains = np.array([0, 0, 1, 1], dtype=np.int8)
    pairs = build_pairs([np.array([0, 2, 1, 3])], domains, 1, 4, half_life=1.0, max_prefix=50)
    assert pairs.targets.tolist() == [2, 3]
    # second pair: history 0, 2, 1 -> other-domain items 0 (age 2) and 1 (age 0)
    np.testing.assert_allclose(pairs.src.toarray()[1], [0.25 / 1.25, 1 / 1.25, 0, 0])
    np.testing.assert_allclose(pairs.same.toarray()[1], [0, 0, 1.0, 0])


def test_hybrid_gives_rarely_seen_candidates_their_own_weight() -> None:
    a = np.array([[3.0, 2.0, 1.0, 0.0]])
    k = np.array([[0.0, 0.0, 0.0, 10.0]])  # only candidate 3 has item-kNN evidence
    rare = np.array([[False, False, False, True]])
    assert hybrid_scores(a, k, 0.25).argmax() == 0
    np.testing.assert_array_equal(hybrid_scores(a, k, 0.25, rare, None), hybrid_scores(a, k, 0.25))
    boosted = hybrid_scores(a, k, 0.25, rare, 2.0)
    assert boosted.argmax() == 3
    np.testing.assert_allclose(boosted[0, :3], hybrid_scores(a, k, 0.25)[0, :3])


def _blend(tuned: list[float], knn: list[float], rare: list[bool], first: int) -> _Blend:
    flags = np.array([rare])
    scores = np.array([knn])
    cands = np.arange(first, first + 4)[None, :]
    return _Blend(np.array([tuned]), scores, np.zeros_like(scores), cands, flags, flags[:, 0])


@pytest.mark.parametrize(
    ("knn", "two_hop", "expected"),
    [
        # item-kNN has no evidence for the target (column 0); the walk ranks it first.
        # z(kNN) of the target -0.58 against 1.73, z(walk) 1.70 against -0.73: w > 0.95.
        ([0.0, 0.0, 1.0, 0.0], [5.0, 1.0, 0.0, 0.0], 1.0),
        # item-kNN already ranks it first: the walk, which ranks it last, gets no weight.
        ([1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 2.0, 3.0], 0.0),
    ],
)
def test_two_hop_weight_is_chosen_on_collaborative_filtering_alone(
    knn: list[float], two_hop: list[float], expected: float
) -> None:
    dataset, vectors = _synthetic()
    valid = Validation(dataset, vectors, AdapterConfig(), {}, {}, np.zeros(120))
    blend = _Blend(
        np.zeros((1, 4)),
        np.array([knn]),
        np.array([two_hop]),
        np.arange(4)[None, :],
        np.zeros((1, 4), bool),
        np.zeros(1, bool),
    )
    assert blend.choose_two_hop(valid) == expected
    # The smallest weight that ranks the target first wins; `cf` is the blend with it.
    np.testing.assert_allclose(blend.cf, combine_cf(blend.knn, blend.two_hop, expected))
    assert (blend.cf[0, 0] > blend.cf[0, 1:]).all()


@pytest.mark.parametrize(
    ("rare_case", "expected"),
    [
        # item-kNN ranks the rare target first, the adapter last: the smallest weight
        # that lifts it above the adapter's favourite (z: -1.34 + 1.73 w > 1.20) is 1.5.
        ((0.0, 3.0, 2.0, 1.0), 1.5),
        # The adapter already ranks it first: no weight of its own is needed.
        ((3.0, 0.0, 1.0, 2.0), None),
    ],
)
def test_rare_weight_is_the_best_that_keeps_rare_targets_up_with_item_knn(
    rare_case: tuple[float, ...], expected: float | None
) -> None:
    dataset, vectors = _synthetic()
    valid = Validation(dataset, vectors, AdapterConfig(), {}, {}, np.zeros(120))
    popular = _blend([3, 2, 1, 0], [1, 0, 0, 0], [False] * 4, 0)
    rare = _blend(list(rare_case), [10, 0, 0, 0], [True, False, False, False], 4)
    blends = {"mixed": popular, "cross": rare}
    weights = {"mixed": 0.25, "cross": 0.25}
    assert _best_rare_weight(blends, weights, valid) == expected
    # Without a rarely seen target there is nothing to choose by.
    assert _best_rare_weight({"mixed": popular}, weights, valid) is None


def test_hybrid_is_a_sum_of_standardised_scores() -> None:
    a = np.array([[1.0, 2.0, 3.0]])
    k = np.array([[30.0, 20.0, 10.0]])
    assert hybrid_scores(a, k, 0.0).argmax() == 2
    assert hybrid_scores(a, k, 1e6).argmax() == 0
    np.testing.assert_allclose(hybrid_scores(a, k, 1.0), [[0.0, 0.0, 0.0]], atol=1e-9)


def _purchases(sequences: list[list[int]]) -> list[dict[str, object]]:
    """Events of one user per sequence, in order: "u" for the first, "u1", "u2"... after."""
    return [
        {"user": f"u{n}" if n else "u", "item": str(item), "action": "purchase", "time": t}
        for n, items in enumerate(sequences)
        for t, item in enumerate(items)
    ]


def _tuned_database(
    tmp_path: Path,
    events: list[dict[str, object]],
    rare_weight: float | None = None,
    two_hop_weight: float = 0.0,
) -> tuple[Path, TrainedAdapter, np.ndarray, SequenceDataset]:
    """A database of the synthetic catalogue with `events`, and an adapter trained and stored
    in it (with every even item counted as rarely seen, when `rare_weight` is given, and the
    two-step walk weighted `two_hop_weight` in both settings)."""
    from localrec.store.db import Store
    from localrec.store.ingest import add_events, add_items
    from localrec.store.item_vectors import encode_items
    from tests.fakes import FakeEncoder

    dataset, _ = _synthetic()
    ids = [str(i) for i in range(120)]
    db = tmp_path / "tuned.db"
    with Store(db) as store:
        add_items(
            store,
            [
                {"id": i, "domain": dataset.domain_names[dataset.domains[int(i)]], "title": f"t{i}"}
                for i in ids
            ],
        )
        add_events(store, events)
        encode_items(store, FakeEncoder())
        matrix = store.item_matrix("fake", None)
        vectors = matrix.matrix[[matrix.index()[i] for i in ids]]
        config = AdapterConfig(
            dim=16, epochs=3, negatives=50, batch_size=128, learning_rate=0.02, min_pairs=10
        )
        adapter = train_adapter(dataset, vectors, "fake", ids, config)
        if rare_weight is not None:
            adapter.domains[1].rare_weight = rare_weight
            adapter.counts = np.where(np.arange(120) % 2 == 0, 2, 50)
        adapter.domains[1].two_hop_weight = {"mixed": two_hop_weight, "cross": two_hop_weight}
        store_adapter(store, adapter)
    return db, adapter, vectors, dataset


def test_recommender_scores_like_the_adapter(tmp_path: Path) -> None:
    """The API's tuned path (one user, from stored events) and the batch scorer used by
    eval are two implementations of one model: they must give the same scores."""
    from localrec.recommend.recommender import Recommender
    from tests.fakes import FakeEncoder

    events: list[dict[str, object]] = [
        {"user": "u", "item": "3", "action": "purchase", "time": 1},
        {"user": "u", "item": "7", "action": "purchase", "time": 2},
    ]
    db, adapter, vectors, dataset = _tuned_database(tmp_path, events)
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
    from localrec.scoring.itemknn import ItemKNNScorer
    from tests.fakes import FakeEncoder

    # u has 3 then 7; others went 3 -> 64 and 7 -> 71 (an even, "rare" item, and an odd one).
    sequences = [[3, 7], [3, 64], [7, 71], [3, 64]]
    events = _purchases(sequences)
    db, adapter, vectors, dataset = _tuned_database(tmp_path, events, 5.0, two_hop_weight)
    knn = ItemKNNScorer([np.array(s) for s in sequences], 120)
    hybrid = HybridRow("h", HybridModel(adapter, vectors, dataset.domains, knn))
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
    events = _purchases(sequences)
    db, adapter, vectors, dataset = _tuned_database(tmp_path, events)
    adapter.domains[1].cold_weight = {"mixed": 1.0, "cross": 1.0}
    adapter.seen[[3, 7]] = False  # u's two items: nothing of u was seen in training
    with Store(db) as store:
        store_adapter(store, adapter)
    knn = ItemKNNScorer([np.array(s) for s in sequences], 120)
    model = HybridModel(adapter, vectors, dataset.domains, knn)
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

    dataset, vectors = _synthetic()
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


def test_a_threshold_after_tune_compares_cosines(tmp_path: Path) -> None:
    """Tuned scores are not cosines, so a threshold list is ranked by zero-shot text (and
    says so), an explicit tuned ranking refuses a threshold, and `score` stays a cosine."""
    from localrec.errors import InputError
    from localrec.recommend.recommender import Recommender
    from tests.fakes import FakeEncoder

    events: list[dict[str, object]] = [
        {"user": "u", "item": "3", "action": "purchase", "time": 1},
        {"user": "u", "item": "7", "action": "purchase", "time": 2},
    ]
    db, *_ = _tuned_database(tmp_path, events)
    with Recommender(db, encoder=FakeEncoder()) as rec:
        assert rec.has_adapter()
        listed = rec.recommend("u", domain="b", k=None, threshold=0.0)
        assert (
            listed.user_vector == "zero-shot" and "a threshold compares cosines" in listed.notes[0]
        )
        assert all(0.0 <= r.score <= 1.0 for r in listed)
        zero_shot = rec.recommend("u", domain="b", k=None, threshold=0.0, user_vector="max-sim")
        assert len(listed.items) > 0 and len(zero_shot.items) > 0
        assert rec.recommend("u", domain="b", k=5).user_vector == "tuned-hybrid"
        with pytest.raises(InputError, match="the tuned adapter's scores are not cosines"):
            rec.recommend("u", domain="b", threshold=0.5, user_vector="tuned")
        with pytest.raises(InputError, match="scores are cosines"):
            rec.score("u", ["61"], user_vector="tuned")
        cosine = rec.score("u", ["61"])[0].score
        zero_shot_hybrid = rec.recommend("u", domain="b", k=None, threshold=-1.0)
        assert {r.item_id: r.score for r in zero_shot_hybrid}["61"] == pytest.approx(cosine)


@pytest.mark.parametrize(
    ("gains", "kept"),
    [
        (np.full(40, 0.2), True),  # a clear lead on every case
        (np.array([0.5, -0.4, 0.3, -0.35, 0.1, -0.1]), False),  # mean 0.008, SE 0.15
        (np.array([-0.2, 0.1, 0.0]), False),  # worse on the mean
    ],
)
def test_a_lead_within_noise_is_not_kept(gains: np.ndarray, kept: bool) -> None:
    from localrec.scoring.adapter import DomainAdapter

    zero = np.zeros((2, 2), np.float32)
    adapter = DomainAdapter(1, zero, zero, zero, zero, np.zeros(2, np.float32))
    adapter.hybrid_ndcg, adapter.zero_shot_ndcg = {"mixed": 0.3}, {"mixed": 0.3 - gains.mean()}
    why = _not_better(gains, adapter)
    assert (why is None) is kept
    if gains.mean() > 0 and not kept:
        assert why is not None and f"a lead within noise on {len(gains)} validation cases" in why


def test_tuned_hybrid_explains_with_the_history_items_cf_went_through(tmp_path: Path) -> None:
    """u had 3 then 7. Others went 3 -> 64 (twice), 7 -> 71, and 7 -> 10 -> 80: 64 and 71
    are explained by the item others went on from, 80 by the walk's two steps, and an item
    CF never reaches by the most similar history text."""
    from localrec.recommend.recommender import Recommender
    from localrec.recommend.results import OTHERS_NEXT, OTHERS_TWO_STEPS, SIMILAR_TEXT
    from localrec.store.db import Store
    from tests.fakes import FakeEncoder

    sequences = [[3, 7], [3, 64], [7, 71], [3, 64], [7, 10], [10, 80]]
    events = _purchases(sequences)
    db, adapter, _, _ = _tuned_database(tmp_path, events, two_hop_weight=1.0)
    adapter.domains[1].hybrid_weight = {"mixed": 1.0, "cross": 1.0}
    with Store(db) as store:
        store_adapter(store, adapter)
    with Recommender(db, encoder=FakeEncoder(), user_vector="hybrid") as rec:
        got = rec.recommend("u", domain="b", k=60, include_seen=True, explain=True)
    assert got.user_vector == "tuned-hybrid"
    why = {r.item_id: r.because for r in got}
    assert [(e.item_id, e.reason, e.similarity) for e in why["64"]] == [("3", OTHERS_NEXT, 1.0)]
    assert [(e.item_id, e.reason) for e in why["71"]] == [("7", OTHERS_NEXT)]
    assert [(e.item_id, e.reason) for e in why["80"]] == [("7", OTHERS_TWO_STEPS)]
    assert why["100"] and all(e.reason == SIMILAR_TEXT for e in why["100"])
    assert got.items[0].to_dict()["because_detail"][0]["reason"] in (
        SIMILAR_TEXT,
        OTHERS_NEXT,
        OTHERS_TWO_STEPS,
    )


@pytest.mark.parametrize(
    ("copies", "shown"),
    [
        # 3 -> 64 in 10 sequences, 7 -> 64 in one; u had 3 (recency 0.8) then 7 (1), and
        # sim(h, 64) = pairs / count(h) ** 0.2: shares 8/11**0.2 : 1/2**0.2 = 85.0% : 15.0%.
        (10, ["3", "7"]),
        # In 60: 7's share is 4.0%, below MIN_REASON_SHARE, so only 3 is named.
        (60, ["3"]),
    ],
)
def test_a_sliver_of_the_cf_score_is_no_reason(
    tmp_path: Path, copies: int, shown: list[str]
) -> None:
    from localrec.recommend.recommender import Recommender
    from localrec.store.db import Store
    from tests.fakes import FakeEncoder

    sequences = [[3, 7], [7, 64], *([[3, 64]] * copies)]
    events = _purchases(sequences)
    db, adapter, _, _ = _tuned_database(tmp_path, events)
    adapter.domains[1].hybrid_weight = {"mixed": 1.0, "cross": 1.0}
    with Store(db) as store:
        store_adapter(store, adapter)
    with Recommender(db, encoder=FakeEncoder(), user_vector="hybrid") as rec:
        got = rec.recommend("u", domain="b", k=60, include_seen=True, explain=True)
    because = {r.item_id: r.because for r in got}["64"]
    assert [e.item_id for e in because] == shown
    share_7 = (1 / 2**0.2) / (0.8 * copies / (copies + 1) ** 0.2 + 1 / 2**0.2)
    if len(shown) == 2:
        assert because[1].similarity == pytest.approx(share_7)
