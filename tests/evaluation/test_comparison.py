"""Paired differences between methods of one evaluation, with bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from localrec.errors import InputError
from localrec.evaluation.comparison import paired_differences
from localrec.evaluation.results import CaseRanks, EvalReport, MetricRow

FOOD, KITCHEN = 0, 1


def report_of(ranks: dict[str, list[int]], domains: list[int]) -> EvalReport:
    """A report whose methods ranked the same cases' targets at the given ranks."""
    n = len(domains)
    cases = {
        (method, "mixed"): CaseRanks(
            ranks=np.asarray(r, dtype=np.int64),
            targets=np.arange(n, dtype=np.int64),
            domains=np.asarray(domains, dtype=np.int64),
            history_lengths=np.ones(n, dtype=np.int64),
            n_candidates=np.full(n, 100, dtype=np.int64),
        )
        for method, r in ranks.items()
    }
    rows = [
        MetricRow(method, "mixed", domain, 0, 0, 0, 0, 0, 0, 0, 0, 1)
        for method in ranks
        for domain in ("food", "kitchen")
    ]
    return EvalReport("test", 99, 42, rows, cases, domain_names=("food", "kitchen"))


def test_a_method_always_first_against_one_never_in_the_top_ten() -> None:
    report = report_of({"a": [1] * 6, "b": [11] * 6}, [FOOD] * 3 + [KITCHEN] * 3)
    diffs = {(d.method, d.domain): d for d in paired_differences(report, "b")}
    assert set(diffs) == {("a", "food"), ("a", "kitchen")}  # not b against itself
    food = diffs[("a", "food")]
    assert (food.difference, food.low, food.high, food.n, food.clear) == (1.0, 1.0, 1.0, 3, True)
    assert food.as_dict()["ndcg@10_difference"] == 1.0


def test_a_tie_is_not_a_clear_difference() -> None:
    report = report_of({"a": [1, 11, 2, 11], "b": [11, 1, 11, 2]}, [FOOD] * 4)
    (diff,) = paired_differences(report, "b")
    assert diff.domain == "food" and abs(diff.difference) < 1e-12
    assert diff.low < 0 < diff.high and not diff.clear


def test_intervals_are_seeded_and_pair_the_same_cases() -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(1, 30, size=200).tolist()
    better = [max(1, r - 3) for r in base]  # every case ranked 3 places higher or at 1
    report = report_of({"better": better, "base": base}, [KITCHEN] * 200)
    first, again = paired_differences(report, "base"), paired_differences(report, "base")
    assert first == again
    (diff,) = first
    per_case = [
        (1 / np.log2(b + 1) if b <= 10 else 0) - (1 / np.log2(a + 1) if a <= 10 else 0)
        for b, a in zip(better, base, strict=True)
    ]
    assert diff.difference == pytest.approx(np.mean(per_case))
    # Paired, the shift is clear although the two methods' ranks overlap widely.
    assert diff.clear and diff.low > 0 and diff.low < diff.difference < diff.high


@pytest.mark.parametrize("baseline", ["c", "", "A"])
def test_an_unknown_baseline_names_the_methods(baseline: str) -> None:
    report = report_of({"a": [1], "b": [2]}, [FOOD])
    with pytest.raises(InputError, match=f"cannot compare with {baseline!r}.*choose one of a, b"):
        paired_differences(report, baseline)
