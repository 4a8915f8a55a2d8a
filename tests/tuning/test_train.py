"""Training the adapter: gradients, a synthetic task it must solve, determinism, storage, rails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from localrec.data.dataset import SequenceDataset
from localrec.errors import TrainingError
from localrec.scoring.adapter import AdapterConfig
from localrec.scoring.history import History
from localrec.tuning.storage import (
    adapter_bytes,
    adapter_from_stored,
    adapter_meta,
)
from localrec.tuning.train import batch_loss_and_grads, build_pairs, train_adapter
from tests.synthetic import synthetic


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


def test_recovers_a_known_mapping() -> None:
    dataset, vectors = synthetic()
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
    dataset, vectors = synthetic()
    config = AdapterConfig(dim=8, epochs=2, negatives=20, batch_size=256, min_pairs=10, seed=5)
    ids = [str(i) for i in range(120)]
    first = adapter_bytes(train_adapter(dataset, vectors, "fake", ids, config))
    second = adapter_bytes(train_adapter(dataset, vectors, "fake", ids, config))
    other = train_adapter(
        dataset, vectors, "fake", ids, AdapterConfig(**{**config.__dict__, "seed": 6})
    )
    assert first == second and first != adapter_bytes(other)


def test_stored_adapter_round_trips() -> None:
    dataset, vectors = synthetic()
    config = AdapterConfig(dim=8, epochs=1, negatives=20, min_pairs=10)
    adapter = train_adapter(dataset, vectors, "fake", [str(i) for i in range(120)], config)
    again = adapter_from_stored(adapter_meta(adapter), adapter_bytes(adapter))
    assert again.counts is not None and adapter.counts is not None
    np.testing.assert_array_equal(again.counts, adapter.counts)
    chosen = ("rare_weight", "cf_weights", "cold_weight", "popularity_weight", "bias_shrink")
    for loaded, trained in zip(again.domains.values(), adapter.domains.values(), strict=True):
        assert [getattr(loaded, k) for k in (*chosen, "choices")] == [
            getattr(trained, k) for k in (*chosen, "choices")
        ]
        assert all(set(getattr(loaded, k)) == {"mixed", "cross"} for k in chosen[1:])
        assert {"coverage@10", "itemknn coverage@10", "guards"} <= set(loaded.choices["mixed"])
    candidates = np.tile(np.arange(60, 120), (1, 1))
    a = adapter.scores([History.of_rows([1, 2])], candidates, 1, vectors, dataset.domains)
    b = again.scores([History.of_rows([1, 2])], candidates, 1, vectors, dataset.domains)
    np.testing.assert_allclose(a, b, rtol=1e-2, atol=1e-3)  # float16 offsets


def test_an_adapter_stored_before_its_parts_were_chosen_loads_as_item_knn_and_walk() -> None:
    import io

    dataset, vectors = synthetic()
    config = AdapterConfig(dim=8, epochs=1, negatives=20, min_pairs=10)
    adapter = train_adapter(dataset, vectors, "fake", [str(i) for i in range(120)], config)
    arrays = dict(np.load(io.BytesIO(adapter_bytes(adapter))))
    del arrays["counts"]
    old_payload = io.BytesIO()
    np.savez(old_payload, **arrays)  # type: ignore[arg-type]
    meta = adapter_meta(adapter)
    for info in meta["domains"].values():
        for key in ("rare_weight", "cf_weights", "cold_weight", "popularity_weight"):
            del info[key]
        del info["bias_shrink"], info["choices"]
    old = adapter_from_stored(meta, old_payload.getvalue())
    assert old.counts is None and not old.rare(np.arange(120)).any()
    for a in old.domains.values():
        assert a.rare_weight is None and a.cf_weights == {}
        assert a.cold_weight == a.popularity_weight == a.bias_shrink == {}
    # Between the two: a walk weight per setting, read as item-kNN plus the walk.
    for info in meta["domains"].values():
        info["two_hop_weight"] = {"mixed": 0.5, "cross": 0.0}
    walked = adapter_from_stored(meta, old_payload.getvalue())
    assert all(
        a.cf_weights == {"mixed": {"itemknn": 1.0, "walk": 0.5}, "cross": {"itemknn": 1.0}}
        for a in walked.domains.values()
    )


def test_too_little_data_is_refused() -> None:
    dataset, vectors = synthetic()
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

    dataset, vectors = synthetic()
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
    dataset, vectors = synthetic()
    same_text = vectors.copy()
    same_text[60:] = vectors[:60]
    config = AdapterConfig(dim=8, epochs=2, negatives=20, batch_size=256, min_pairs=10)
    with pytest.raises(TrainingError, match=r"b: on the validation split the tuned hybrid") as e:
        train_adapter(
            dataset, same_text, "fake", [str(i) for i in range(120)], config, only_domains=[1]
        )
    assert "for zero-shot text; it would make results worse" in str(e.value)


def test_pairs_are_every_prefix_ending_in_the_domain() -> None:
    domains = np.array([0, 0, 1, 1], dtype=np.int8)
    pairs = build_pairs([np.array([0, 2, 1, 3])], domains, 1, 4, half_life=1.0, max_prefix=50)
    assert pairs.targets.tolist() == [2, 3]
    # second pair: history 0, 2, 1 -> other-domain items 0 (age 2) and 1 (age 0)
    np.testing.assert_allclose(pairs.src.toarray()[1], [0.25 / 1.25, 1 / 1.25, 0, 0])
    np.testing.assert_allclose(pairs.same.toarray()[1], [0, 0, 1.0, 0])
