"""The choices tune makes on validation: the standard-error rule, the collaborative parts,
the hub guard, the rare weight, the keep rule, and validation cut from training."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from typing import Any

import numpy as np
import pytest

from localrec.data.protocol import SETTINGS, held_out_from_training, tie_break, training_counts
from localrec.scoring.adapter import AdapterConfig, DomainAdapter, TrainedAdapter
from localrec.scoring.history import histories_of_rows
from localrec.scoring.hybrid import (
    CF_PARTS,
    ITEM_ITEM_PARTS,
    HybridModel,
    combine_parts,
    hybrid_scores,
    standardise,
)
from localrec.scoring.itemknn import ItemKNNScorer
from localrec.tuning.rules import best_weight, paired_error, simplest_within_error
from localrec.tuning.search import Cell, _collaborative, choose_cell
from localrec.tuning.selection import Validation, _best_rare_weight, _not_better, choose_weights
from localrec.tuning.train import train_adapter
from tests.synthetic import synthetic


@pytest.mark.parametrize(
    ("richer", "chosen"),
    [
        # The same per-case NDCG@10: a tie, and the simpler score wins.
        ([0.5, 0.0, 1.0, 0.0], 0),
        # Better on the mean by 0.125, but the paired SE is 0.125: not more than one SE.
        ([1.0, 0.0, 1.0, 0.0], 0),
        # Better on every case that differs, by more than one SE (0.1 against 0.058).
        ([0.6, 0.1, 1.0, 0.1], 1),
    ],
)
def test_the_simpler_score_wins_unless_the_richer_is_better_by_more_than_a_standard_error(
    richer: list[float], chosen: int
) -> None:
    simpler = np.array([0.5, 0.0, 1.0, 0.0])
    assert simplest_within_error([simpler, np.array(richer)]) == chosen


def test_the_standard_error_rule_takes_the_first_within_error_of_the_best() -> None:
    worse, tied, best = np.zeros(8), np.full(8, 0.5), np.full(8, 0.5)
    best[0] = 0.6  # better than `tied` by 0.0125 with an SE of 0.0125: within error
    assert simplest_within_error([worse, tied, best]) == 1
    assert paired_error(np.array([0.1])) == np.inf
    with pytest.raises(ValueError):
        simplest_within_error([])
    weight, cases = best_weight([0.0, 1.0, 2.0], lambda w: np.full(3, min(w, 1.0)))
    assert weight == 1.0 and cases.tolist() == [1.0, 1.0, 1.0]  # the earliest of equals


def _cell(tuned: np.ndarray, parts: dict[str, np.ndarray], popularity: np.ndarray) -> Cell:
    cands = np.tile(np.arange(tuned.shape[1]), (len(tuned), 1))
    for name in CF_PARTS:
        parts.setdefault(name, np.zeros_like(tuned))
    no = np.zeros(tuned.shape, bool)
    return Cell(tuned, np.zeros_like(tuned), parts, popularity, cands, no, no[:, 0], 50)


def test_a_collaborative_part_is_added_only_when_it_helps_beyond_noise() -> None:
    """Item-kNN ranks the target (column 0) first in half the cases; the walk ranks it
    first in the other half, and co-occurrence is noise: kNN + walk, no co-occurrence."""
    rng = np.random.default_rng(0)
    n, width = 200, 20
    knn = rng.random((n, width))
    walk = rng.random((n, width))
    knn[: n // 2, 0], walk[n // 2 :, 0] = 5.0, 5.0
    knn[n // 2 :, 0], walk[: n // 2, 0] = 0.0, 0.0
    noise = rng.random((n, width))
    cell = _cell(np.zeros((n, width)), {"itemknn": knn, "walk": walk, "cooccurrence": noise}, knn)
    ties = tie_break(width)

    def case_ndcg(scores: np.ndarray) -> np.ndarray:
        return valid_ndcg(scores, ties, cell.cands)

    singles = {name: case_ndcg(cell.parts[name]) for name in CF_PARTS}
    weights = _collaborative(cell.standardised(), singles, case_ndcg)
    assert set(weights) == {"itemknn", "walk"} and weights["itemknn"] == 1.0


def valid_ndcg(scores: np.ndarray, ties: np.ndarray, cands: np.ndarray) -> np.ndarray:
    from localrec.data.protocol import ndcg_per_case, rank_of_target

    return ndcg_per_case(rank_of_target(scores + ties[cands]), 10)


def test_the_hub_guard_keeps_coverage_up_with_item_knn() -> None:
    """Every case's target is column 0. The adapter ranks it first, but fills the rest of
    everyone's top 10 with the same nine popular items (390-398, every case's candidates),
    where item-kNN's lists hold three fixed items and six that vary: the adapter's
    coverage@10 is below item-kNN's. Any weight on item-kNN costs NDCG; negative
    popularity pushes the hubs below the rest at no cost, so it is chosen."""
    rng = np.random.default_rng(1)
    n, width = 100, 40
    cands = np.stack([rng.choice(380, width, replace=False) for _ in range(n)])
    cands[:, 1:10] = np.arange(390, 399)
    cands[:, 10:13] = np.arange(380, 383)
    tuned = rng.random((n, width))
    tuned[:, 0], tuned[:, 1:10] = 3.0, np.linspace(1.1, 1.9, 9)
    knn = rng.random((n, width))
    knn[:, 10:13] = 2.0
    popularity = np.full((n, width), 0.5)
    popularity[:, 1:10] = 1.0
    cell = replace(_cell(tuned, {"itemknn": knn}, popularity), cands=cands, domain_size=400)
    choice = choose_cell(cell, tie_break(400))
    notes = choice.notes
    assert notes["coverage@10"] >= notes["itemknn coverage@10"] > 0.5
    assert choice.popularity < 0 and choice.weight == 0.0
    assert notes["guards"] == 2.0 and choice.ndcg == pytest.approx(1.0)
    assert notes["hub@10"] < 0.5 and notes["itemknn hub@10"] == 1.0  # 380-382 in every list


def _rare_cell(tuned: list[float], knn: list[float], rare: list[bool], first: int) -> Cell:
    flags = np.array([rare])
    cell = _cell(np.array([tuned]), {"itemknn": np.array([knn])}, np.zeros((1, 4)))
    cands = np.arange(first, first + 4)[None, :]
    return replace(cell, cands=cands, rare=flags, rare_target=flags[:, 0])


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
    dataset, vectors = synthetic()
    valid = Validation(dataset, vectors, AdapterConfig(), {}, {}, np.zeros(120))
    popular = _rare_cell([3, 2, 1, 0], [1, 0, 0, 0], [False] * 4, 0)
    rare = _rare_cell(list(rare_case), [10, 0, 0, 0], [True, False, False, False], 4)
    zero = np.zeros((2, 2), np.float32)
    adapter = DomainAdapter(1, zero, zero, zero, zero, np.zeros(120, np.float32))
    for s in ("mixed", "cross"):
        adapter.cf_weights[s], adapter.hybrid_weight[s] = {"itemknn": 1.0}, 0.25
        adapter.bias_shrink[s], adapter.popularity_weight[s] = 0.0, 0.0
    assert _best_rare_weight({"mixed": popular, "cross": rare}, adapter, valid) == expected
    # Without a rarely seen target there is nothing to choose by.
    assert _best_rare_weight({"mixed": popular}, adapter, valid) is None


@pytest.mark.parametrize(
    ("gains", "kept"),
    [
        (np.full(40, 0.2), True),  # a clear lead on every case
        (np.array([0.5, -0.4, 0.3, -0.35, 0.1, -0.1]), False),  # mean 0.008, SE 0.15
        (np.array([-0.2, 0.1, 0.0]), False),  # worse on the mean
    ],
)
def test_a_lead_within_noise_is_not_kept(gains: np.ndarray, kept: bool) -> None:
    zero = np.zeros((2, 2), np.float32)
    adapter = DomainAdapter(1, zero, zero, zero, zero, np.zeros(2, np.float32))
    adapter.hybrid_ndcg, adapter.zero_shot_ndcg = {"mixed": 0.3}, {"mixed": 0.3 - gains.mean()}
    why = _not_better(gains, adapter)
    assert (why is None) is kept
    if gains.mean() > 0 and not kept:
        assert why is not None and f"a lead within noise on {len(gains)} validation cases" in why


def test_validation_cut_from_training_leaves_the_held_out_items_out_of_every_fitted_model() -> None:
    """Each training user who spans both domains gives their last item as a validation
    case; nothing fitted on the training sequences `tune` uses has seen those items."""
    dataset, vectors = synthetic()
    # Each user goes on to a second target-domain item; 59 and 119 occur only as the
    # last item of two training users.
    longer = [np.append(s, 60 + (s[1] + 1) % 60).astype(np.int32) for s in dataset.train]
    train = [s[(s != 59) & (s != 119)] for s in longer]
    last = [np.array([5, 65, 59], np.int32), np.array([6, 66, 119], np.int32)]
    single = np.array([7, 8], np.int32)  # one domain only: not cut
    dataset = replace(dataset, train=[*train, *last, single])
    fit, held_out = held_out_from_training(dataset)
    spans = sum(len(s) >= 2 and len(set(dataset.domains[s].tolist())) > 1 for s in train)
    assert held_out == spans + 2 > 2000
    assert [s.tolist() for s in fit.valid[held_out - 2 : held_out]] == [s.tolist() for s in last]
    assert [s.tolist() for s in fit.valid[held_out:]] == [s.tolist() for s in dataset.valid]
    assert fit.train[-1].tolist() == [7, 8] and fit.train[-2].tolist() == [6, 66]
    counts = training_counts(fit)
    assert counts[59] == counts[119] == 0
    knn = ItemKNNScorer(fit.train, 120)
    assert knn.similarity[:, [59, 119]].nnz == 0 and knn.transition[:, [59, 119]].nnz == 0
    valid = Validation.build(fit, vectors, AdapterConfig(), held_out)
    assert valid.held_out == held_out and valid.counts[[59, 119]].tolist() == [0, 0]
    for name in ("cooccurrence", "rp3beta"):
        assert valid.other(name).similarity[:, [59, 119]].nnz == 0
    config = AdapterConfig(dim=8, epochs=1, negatives=20, min_pairs=10)
    adapter = train_adapter(
        fit, vectors, "fake", [str(i) for i in range(120)], config, validation=valid
    )
    assert not adapter.seen[[59, 119]].any()
    for model in adapter.domains.values():
        assert not model.offsets[[59, 119]].any()
        assert model.inputs is not None and not model.inputs[[59, 119]].any()


def test_the_search_standardises_once_and_blends_as_the_served_rule() -> None:
    """A cell's standardised scores are made once and reused for every weight the search
    tries; each blend is the served rule computed afresh, bit for bit, whatever the order
    of the questions. The cell is frozen: nothing they were made from can change."""
    rng = np.random.default_rng(2)
    n, width = 30, 12
    parts = {name: rng.random((n, width)) for name in CF_PARTS}
    cell = replace(
        _cell(rng.random((n, width)), parts, np.log1p(rng.integers(0, 9, (n, width)))),
        bias=rng.random((n, width)),
        rare=rng.random((n, width)) < 0.3,
    )
    z = cell.standardised()
    asked = [
        ({"itemknn": 1.0, "walk": 0.5}, 0.25, 0.0, 0.0, None),
        ({"itemknn": 1.0, "rp3beta": 2.0}, 1e6, 0.5, -0.25, None),
        ({"itemknn": 1.0, "walk": 0.5}, 0.75, 1.0, 0.1, 1.5),
        ({"walk": 1.0, "cooccurrence": 0.25, "itemknn": 3.0}, 0.25, 0.5, -1.0, 0.0),
    ]
    for weights, weight, shrink, popularity, rare_weight in asked * 2:
        cf = combine_parts(cell.parts, weights)
        np.testing.assert_array_equal(z.cf(weights), cf)
        expected = hybrid_scores(
            cell.tuned - shrink * cell.bias if shrink else cell.tuned,
            cf,
            weight,
            cell.rare,
            rare_weight,
        )
        if popularity:
            expected = expected + popularity * standardise(cell.popularity)
        got = z.hybrid(weights, weight, shrink, popularity, rare_weight)
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(FrozenInstanceError):
        cell.tuned = np.zeros((n, width))  # type: ignore[misc]


def _trained() -> tuple[Validation, TrainedAdapter]:
    """A small adapter trained on the synthetic dataset, and the validation it chose on."""
    dataset, vectors = synthetic()
    config = AdapterConfig(dim=8, epochs=1, negatives=20, min_pairs=10)
    valid = Validation.build(dataset, vectors, config)
    ids = [str(i) for i in range(120)]
    return valid, train_adapter(dataset, vectors, "fake", ids, config, validation=valid)


def test_the_served_pass_scores_the_cases_as_the_hybrid_model_does() -> None:
    """`tune` scores its validation cases as served from the scores it made for the
    search (`HybridModel.blend_rows`); `HybridModel.score` makes them anew, as `eval` and
    `recommend` do: the same bits, with every part, bias left out, popularity, a rare
    and a cold weight in play."""
    valid, adapter = _trained()
    model = adapter.domains[1]
    for s in SETTINGS:
        model.cf_weights[s] = {"itemknn": 1.0, "walk": 0.5, "cooccurrence": 0.25, "rp3beta": 2}
        model.bias_shrink[s], model.popularity_weight[s], model.cold_weight[s] = 0.5, -0.25, 0.5
    model.rare_weight = 1.5
    # Items 0-29 unseen (histories of them alone are cold), 60-79 seen twice (rare).
    counts = valid.counts.copy()
    counts[:30], counts[60:80] = 0, 2
    valid, adapter = replace(valid, counts=counts), replace(adapter, counts=counts, seen=counts > 0)
    assert any(adapter.cold(h) for h in valid.cases["mixed"].histories)
    cells = {s: valid.cell(model, s) for s in SETTINGS}
    text = {s: valid.zero_shot_scores(s, 1) for s in SETTINGS}
    assert all(cell is not None for cell in cells.values())
    served = valid.served(model, cells, text)  # type: ignore[arg-type]
    others = {name: valid.other(name) for name in ITEM_ITEM_PARTS}
    hybrid = HybridModel(adapter, valid.vectors, valid.dataset.domains, valid.knn, others=others)
    for s in SETTINGS:
        rows = valid.rows(s, 1)
        histories = histories_of_rows(valid.histories(s, rows))
        expected = hybrid.score(histories, valid.cands[s][rows], 1)
        np.testing.assert_array_equal(served[s], expected)


def test_choosing_on_the_kept_epochs_scores_chooses_as_scoring_anew() -> None:
    """`train_adapter` hands `choose_weights` the scores its kept epoch made
    (`tuned_ndcg`); they are the adapter's own, so every choice is the same."""
    valid, adapter = _trained()
    chosen = adapter.domains[1]
    fields = ("cf_weights", "hybrid_weight", "bias_shrink", "popularity_weight", "cold_weight")
    names = (*fields, "choices", "hybrid_ndcg", "zero_shot_ndcg")
    blanks: list[dict[str, Any]] = [{"rare_weight": 0.5, **{n: {} for n in names}} for _ in "ab"]
    again, given = (replace(chosen, **blank) for blank in blanks)
    ndcg, scored = valid.tuned_ndcg(given)
    assert ndcg == chosen.valid_ndcg
    assert choose_weights(again, valid) == choose_weights(given, valid, scored)
    for name in (*names, "rare_weight"):
        assert getattr(again, name) == getattr(given, name) == getattr(chosen, name)
