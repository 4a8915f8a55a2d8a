from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from localrec.data.dataset import SequenceDataset, load_dataset
from localrec.data.protocol import (
    TIE_BREAK_SCALE,
    coverage_at_k,
    draw_candidates,
    full_candidates,
    make_cases,
    metrics_from_ranks,
    rank_of_target,
    tie_break,
)
from localrec.errors import DatasetError
from localrec.evaluation.protocol import evaluate
from tests.conftest import require_data

FOOD, KITCHEN = 0, 1


def synthetic(
    n_food: int = 30, n_kitchen: int = 50, test: Sequence[Sequence[int]] = ()
) -> SequenceDataset:
    n = n_food + n_kitchen
    # Interleaved domains, so a domain's items are not a contiguous index range.
    domains = np.array([FOOD if i % 2 == 0 and i < 2 * n_food else KITCHEN for i in range(n)])
    return SequenceDataset(
        root=Path("synthetic"),
        item_ids=np.arange(n, dtype=np.int64) * 10,
        domains=domains.astype(np.int8),
        domain_names=("food", "kitchen"),
        titles=[f"item {i}" for i in range(n)],
        attributes=[""] * n,
        train=[],
        valid=[],
        test=[np.asarray(s, dtype=np.int32) for s in test],
    )


def food(ds: SequenceDataset, k: int) -> int:
    return int(ds.items_of_domain(FOOD)[k])


def kitchen(ds: SequenceDataset, k: int) -> int:
    return int(ds.items_of_domain(KITCHEN)[k])


# --- metrics ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rank", "expected"),
    [
        (1, {"ndcg@5": 1.0, "ndcg@10": 1.0, "hr@1": 1.0, "hr@5": 1.0, "hr@10": 1.0, "mrr": 1.0}),
        (
            3,
            {"ndcg@5": 0.5, "ndcg@10": 0.5, "hr@1": 0.0, "hr@5": 1.0, "hr@10": 1.0, "mrr": 1 / 3},
        ),
        (
            10,
            {
                "ndcg@5": 0.0,
                "ndcg@10": 1 / math.log2(11),
                "hr@1": 0.0,
                "hr@5": 0.0,
                "hr@10": 1.0,
                "mrr": 0.1,
            },
        ),
        (
            11,
            {"ndcg@5": 0.0, "ndcg@10": 0.0, "hr@1": 0.0, "hr@5": 0.0, "hr@10": 0.0, "mrr": 1 / 11},
        ),
    ],
)
def test_metrics_of_a_single_rank(rank: int, expected: dict[str, float]) -> None:
    assert metrics_from_ranks([rank]) == pytest.approx(expected)


def test_metrics_average_over_cases() -> None:
    m = metrics_from_ranks([1, 2, 11, 1000])
    assert m["hr@1"] == 0.25
    assert m["hr@10"] == 0.5
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 4)
    assert m["mrr"] == pytest.approx((1 + 0.5 + 1 / 11 + 1 / 1000) / 4)


@pytest.mark.parametrize(
    ("row", "rank"),
    [
        ([0.9, 0.1, 0.2, 0.3], 1),
        ([0.25, 0.1, 0.2, 0.3], 2),
        ([0.0, 0.1, 0.2, 0.3], 4),
        # A raw tie is not a win: only strictly higher scores count against the target.
        ([0.2, 0.2, 0.2, 0.1], 1),
    ],
)
def test_rank_of_target_counts_strictly_higher(row: list[float], rank: int) -> None:
    assert rank_of_target(np.array([row])).tolist() == [rank]


def test_tie_break_is_fixed_tiny_and_distinct() -> None:
    tb = tie_break(1000)
    assert np.array_equal(tb, tie_break(1000))
    assert tb.min() >= 0.0
    assert tb.max() < TIE_BREAK_SCALE
    assert len(np.unique(tb)) == 1000


def test_coverage_counts_distinct_items() -> None:
    assert coverage_at_k(np.array([3, 3, 4, 9]), 10) == 0.3


# --- cases and candidates --------------------------------------------------------------


def test_make_cases_mixed_and_cross() -> None:
    ds = synthetic()
    f0, f1, k0, k1, k2 = food(ds, 0), food(ds, 1), kitchen(ds, 0), kitchen(ds, 1), kitchen(ds, 2)
    seqs = [np.array([f0, k0, f1, k1]), np.array([k0, k1, k2]), np.array([f0])]
    mixed = make_cases(seqs, ds, "mixed")
    cross = make_cases(seqs, ds, "cross")
    assert mixed.targets.tolist() == [k1, k2, f0]
    assert mixed.domains.tolist() == [KITCHEN, KITCHEN, FOOD]
    assert [h.tolist() for h in mixed.histories] == [[f0, k0, f1], [k0, k1], []]
    # Only other-domain items survive; a case left with no history is kept, not dropped.
    assert [h.tolist() for h in cross.histories] == [[f0, f1], [], []]
    assert cross.history_lengths.tolist() == [2, 0, 0]
    assert len(cross) == 3


def test_make_cases_rejects_unknown_setting() -> None:
    with pytest.raises(ValueError, match="unknown setting"):
        make_cases([np.array([1])], synthetic(), "both")  # type: ignore[arg-type]


@pytest.fixture
def cases_ds() -> SequenceDataset:
    ds = synthetic()
    rng = np.random.default_rng(7)
    seqs = [rng.choice(ds.n_items, size=int(rng.integers(1, 6)), replace=False) for _ in range(40)]
    return synthetic(test=[s.tolist() for s in seqs])


def test_candidates_are_target_then_same_domain_distinct_negatives(
    cases_ds: SequenceDataset,
) -> None:
    cases = make_cases(cases_ds.test, cases_ds, "mixed")
    cands = draw_candidates(cases, cases_ds, n_negatives=20, seed=42)
    assert cands.shape == (40, 21)
    assert np.array_equal(cands[:, 0], cases.targets)
    for row, target, domain in zip(cands, cases.targets, cases.domains, strict=True):
        negatives = row[1:]
        assert target not in negatives
        assert len(np.unique(negatives)) == 20
        assert (cases_ds.domains[negatives] == domain).all()


def test_candidates_can_be_every_other_item_of_the_domain(cases_ds: SequenceDataset) -> None:
    # 30 food items: 29 negatives must be all of them but the target.
    cases = make_cases(cases_ds.test, cases_ds, "mixed")
    cands = draw_candidates(cases, cases_ds, n_negatives=29, seed=1)
    for row, d in zip(cands, cases.domains, strict=True):
        if d == FOOD:
            assert sorted(row.tolist()) == cases_ds.items_of_domain(FOOD).tolist()


def test_candidates_are_deterministic_per_seed_and_differ_between_seeds(
    cases_ds: SequenceDataset,
) -> None:
    cases = make_cases(cases_ds.test, cases_ds, "mixed")
    a = draw_candidates(cases, cases_ds, n_negatives=20, seed=42)
    b = draw_candidates(cases, cases_ds, n_negatives=20, seed=42)
    c = draw_candidates(cases, cases_ds, n_negatives=20, seed=43)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[:, 1:], c[:, 1:])
    # The setting does not change the draw: only targets and their order matter.
    cross = make_cases(cases_ds.test, cases_ds, "cross")
    assert np.array_equal(a, draw_candidates(cross, cases_ds, n_negatives=20, seed=42))


def test_candidate_draw_follows_the_documented_recipe(cases_ds: SequenceDataset) -> None:
    # Other implementations of the protocol must get the same negatives from the same seed.
    cases = make_cases(cases_ds.test, cases_ds, "mixed")
    got = draw_candidates(cases, cases_ds, n_negatives=20, seed=5)
    rng = np.random.default_rng(5)
    for row, target, d in zip(got, cases.targets, cases.domains, strict=True):
        items = cases_ds.items_of_domain(int(d)).tolist()
        others = [i for i in items if i != target]
        expected = [others[j] for j in rng.choice(len(items) - 1, 20, replace=False)]
        assert row[1:].tolist() == expected


def test_too_small_a_domain_is_an_error(cases_ds: SequenceDataset) -> None:
    cases = make_cases(cases_ds.test, cases_ds, "mixed")
    with pytest.raises(DatasetError, match="domain 'food' has 30 items, too few for 30 negatives"):
        draw_candidates(cases, cases_ds, n_negatives=30)


def test_full_candidates_are_the_domain_with_the_target_first() -> None:
    ds = synthetic()
    targets = np.array([kitchen(ds, 0), kitchen(ds, 17), kitchen(ds, 49)])
    cands = full_candidates(targets, ds, KITCHEN)
    assert cands.shape == (3, 50)
    assert cands[:, 0].tolist() == targets.tolist()
    for row in cands:
        assert sorted(row.tolist()) == ds.items_of_domain(KITCHEN).tolist()


# --- evaluate ----------------------------------------------------------------------------


class Fixed:
    """Scores each candidate by a per-item table; ignores the history."""

    def __init__(self, table: npt.NDArray[np.float64], name: str = "fixed") -> None:
        self.name = name
        self.table = table
        self.calls: list[tuple[int, int]] = []

    def score(
        self, histories: Sequence[Any], candidates: npt.NDArray[np.int64], target_domain: int
    ) -> npt.NDArray[np.float64]:
        self.calls.append((target_domain, len(histories)))
        return self.table[candidates]


class Oracle:
    """Scores the target (column 0) `target_score` and every negative 0: rank 1 by default."""

    def __init__(self, name: str = "oracle", target_score: float = 1.0) -> None:
        self.name = name
        self.target_score = target_score

    def score(
        self, histories: Sequence[Any], candidates: npt.NDArray[np.int64], target_domain: int
    ) -> npt.NDArray[np.float64]:
        out = np.zeros(candidates.shape)
        out[:, 0] = self.target_score  # column 0 is the target
        return out


def four_cases() -> SequenceDataset:
    ds = synthetic()
    f, k = food(ds, 0), kitchen(ds, 0)
    return synthetic(
        test=[
            [f, k, kitchen(ds, 5)],
            [k, food(ds, 3)],
            [food(ds, 4), kitchen(ds, 9)],
            [kitchen(ds, 7)],
        ]
    )


def test_oracle_scores_perfectly_and_ranks_come_back_per_case() -> None:
    ds = four_cases()
    report = evaluate(ds, scorers=[Oracle()], n_negatives=9, seed=0)
    assert [(r.setting, r.domain, r.n) for r in report.rows] == [
        ("mixed", "food", 1),
        ("mixed", "kitchen", 3),
        ("cross", "food", 1),
        ("cross", "kitchen", 3),
    ]
    for r in report.rows:
        assert (r.ndcg_5, r.ndcg_10, r.hr_1, r.hr_5, r.hr_10, r.mrr) == (1, 1, 1, 1, 1, 1)
    per_case = report.cases[("oracle", "cross")]
    assert per_case.ranks.tolist() == [1, 1, 1, 1]
    assert per_case.history_lengths.tolist() == [1, 1, 1, 0]
    assert per_case.n_candidates.tolist() == [10, 10, 10, 10]
    assert report.row("oracle", "mixed", "kitchen").metric("hr@10") == 1.0


def test_ties_with_negatives_never_favour_the_target() -> None:
    ds = four_cases()
    flat = Fixed(np.zeros(ds.n_items))
    report = evaluate(ds, settings=("mixed",), scorers=[flat], n_negatives=29, seed=3)
    cases = make_cases(ds.test, ds, "mixed")
    cands = draw_candidates(cases, ds, n_negatives=29, seed=3)
    tb = tie_break(ds.n_items)
    # With every raw score equal, only the fixed per-item tie-break orders candidates.
    expected = 1 + (tb[cands[:, 1:]] > tb[cands[:, :1]]).sum(axis=1)
    assert report.cases[("fixed", "mixed")].ranks.tolist() == expected.tolist()
    assert not (expected == 1).all()


def test_constant_scores_give_average_rank_about_half_the_candidates() -> None:
    ds = synthetic(n_food=30, n_kitchen=400)
    rng = np.random.default_rng(0)
    seqs = [[int(x)] for x in rng.choice(ds.items_of_domain(KITCHEN), 300, replace=False)]
    ds = synthetic(n_food=30, n_kitchen=400, test=seqs)
    report = evaluate(ds, settings=("mixed",), scorers=[Fixed(np.ones(ds.n_items))], n_negatives=99)
    ranks = report.cases[("fixed", "mixed")].ranks
    assert 40 < ranks.mean() < 60
    assert report.rows[0].hr_1 < 0.05


@pytest.mark.parametrize(
    ("target_rank_by_score", "expected_rank"),
    [(0, 1), (9, 10), (10, 11)],
)
def test_evaluate_reports_hand_computed_rank(target_rank_by_score: int, expected_rank: int) -> None:
    # One kitchen case; scores make exactly `target_rank_by_score` items beat the target.
    base = synthetic()
    target = kitchen(base, 20)
    ds = synthetic(test=[[food(base, 0), target]])
    table = np.zeros(ds.n_items)
    table[ds.items_of_domain(KITCHEN)] = np.arange(50, 0, -1)  # kitchen item k scores 50 - k
    table[target] = 50 - target_rank_by_score + 0.5
    report = evaluate(ds, settings=("mixed",), scorers=[Fixed(table)], full=True)
    row = report.rows[0]
    assert report.cases[("fixed", "mixed")].ranks.tolist() == [expected_rank]
    assert row.hr_10 == (1.0 if expected_rank <= 10 else 0.0)
    assert row.ndcg_10 == pytest.approx(
        1 / math.log2(expected_rank + 1) if expected_rank <= 10 else 0
    )
    assert row.mrr == pytest.approx(1 / expected_rank)
    assert row.coverage_10 == pytest.approx(10 / 50)


def test_full_ranking_coverage_of_a_tiny_domain_is_complete() -> None:
    base = synthetic(n_food=8, n_kitchen=20)
    ds = synthetic(n_food=8, n_kitchen=20, test=[[kitchen(base, 0), food(base, 3)]])
    report = evaluate(ds, settings=("mixed",), scorers=[Oracle()], full=True)
    assert report.rows[0].coverage_10 == 1.0  # 8 food items, all inside a top 10
    assert report.cases[("oracle", "mixed")].n_candidates.tolist() == [8]


def test_progress_and_per_domain_calls() -> None:
    ds = four_cases()
    seen: list[int] = []
    scorer = Fixed(np.zeros(ds.n_items))
    evaluate(ds, scorers=[scorer, Oracle()], n_negatives=9, progress=seen.append)
    assert sum(seen) == 2 * 2 * 4  # settings x scorers x cases
    assert scorer.calls == [(FOOD, 1), (KITCHEN, 3), (FOOD, 1), (KITCHEN, 3)]


@pytest.mark.parametrize(
    ("table", "error"),
    [(np.full(80, np.nan), "NaN or infinite"), (np.zeros((80, 2)), "returned shape")],
)
def test_bad_scores_are_rejected(table: npt.NDArray[np.float64], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        evaluate(four_cases(), scorers=[Fixed(table)], n_negatives=9)


def test_duplicate_scorer_names_are_rejected() -> None:
    ds = four_cases()
    with pytest.raises(ValueError, match="unique"):
        evaluate(ds, scorers=[Oracle(), Oracle()], n_negatives=9)


def test_popularity_on_real_test_split_matches_reference() -> None:
    # Reference figures measured outside the project with the same candidate draw:
    # popularity NDCG@10 food 1.86%, kitchen 2.30%, identical in both settings.
    ds = load_dataset(require_data())
    counts = np.bincount(np.concatenate(ds.train), minlength=ds.n_items).astype(np.float64)
    report = evaluate(ds, scorers=[Fixed(counts, "popularity")])
    got = {(r.setting, r.domain): round(100 * r.ndcg_10, 2) for r in report.rows}
    assert got == {
        ("mixed", "food"): 1.86,
        ("mixed", "kitchen"): 2.30,
        ("cross", "food"): 1.86,
        ("cross", "kitchen"): 2.30,
    }
    assert [r.n for r in report.rows] == [300, 637, 300, 637]


def test_slices_pick_rare_targets_and_cold_histories() -> None:
    from dataclasses import replace

    ds = four_cases()
    f, k5 = food(ds, 0), kitchen(ds, 5)
    # kitchen 5 occurs 4 times in training (not rare), food 0 once: every other item never.
    ds = replace(ds, train=[np.array([k5, k5, k5, k5, f], dtype=np.int32)])
    report = evaluate(ds, scorers=[Oracle(), Oracle("worst", -1.0)], n_negatives=9, seed=0)
    found = {(r.slice, r.method, r.setting, r.domain): (r.ndcg_10, r.n) for r in report.slices}
    worst = 1 / math.log2(11)  # rank 10 of 10
    # mixed kitchen cases: [f, k0] -> k5 (common target, seen history), [food 4] -> kitchen 9
    # and [] -> kitchen 7 (rare targets, histories never seen in training).
    assert found[("rare-target", "oracle", "mixed", "kitchen")] == (1.0, 2)
    for name in ("rare-target", "cold-history"):
        value, n = found[(name, "worst", "mixed", "kitchen")]
        assert value == pytest.approx(worst) and n == 2
    assert found[("rare-target", "oracle", "mixed", "food")] == (1.0, 1)
    # cross keeps the other domain only: [f] for the first case is still a seen history.
    assert found[("cold-history", "oracle", "cross", "kitchen")] == (1.0, 2)
    assert {r.slice for r in report.slices} == {"rare-target", "cold-history"}
