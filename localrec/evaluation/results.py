"""What an evaluation run returns: metric rows, per-case ranks, slices, paired differences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from localrec.data.protocol import METRICS

__all__ = ["CaseRanks", "EvalReport", "MetricRow", "PairedDifference", "SliceRow"]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class MetricRow:
    """One method's results on one target domain in one setting; metrics are fractions."""

    method: str
    setting: str
    domain: str
    ndcg_5: float
    ndcg_10: float
    hr_1: float
    hr_5: float
    hr_10: float
    mrr: float
    coverage_10: float
    # The share of cases whose top 10 holds the domain's most recommended item (of those
    # whose candidates hold it): 1.0 when one item is first for everyone.
    hub_10: float
    n: int

    def metric(self, name: str) -> float:
        """A metric by its display name, e.g. 'ndcg@10'."""
        return float(getattr(self, name.replace("@", "_")))


@dataclass(frozen=True, eq=False)
class CaseRanks:
    """Per-case results of one method in one setting, in file order, for further analysis."""

    ranks: IntArray
    targets: IntArray
    domains: IntArray
    # History length as the method saw it (in `cross`, only the other-domain items).
    history_lengths: IntArray
    n_candidates: IntArray


@dataclass(frozen=True)
class SliceRow:
    """NDCG@10 of one method on a subset of the cases: where CF has little to go on."""

    slice: str
    method: str
    setting: str
    domain: str
    ndcg_10: float
    n: int


@dataclass(frozen=True)
class PairedDifference:
    """NDCG@10 of `method` minus `baseline`'s on the same cases, with a bootstrap interval.

    Attributes:
        method: The method compared.
        baseline: The method it is compared with.
        setting: "mixed" or "cross".
        domain: The target domain.
        difference: The mean per-case difference of NDCG@10, as a fraction.
        low: The 95% interval's lower end.
        high: Its upper end.
        n: The number of cases.
    """

    method: str
    baseline: str
    setting: str
    domain: str
    difference: float
    low: float
    high: float
    n: int

    @property
    def clear(self) -> bool:
        """Whether the interval excludes zero: a difference the cases can tell apart."""
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, object]:
        """The comparison as JSON-able data, as `eval --json` gives it."""
        return {
            "method": self.method,
            "baseline": self.baseline,
            "setting": self.setting,
            "domain": self.domain,
            "ndcg@10_difference": self.difference,
            "ci_low": self.low,
            "ci_high": self.high,
            "n": self.n,
        }


@dataclass(frozen=True, eq=False)
class EvalReport:
    """What one `eval` run measured; metrics are fractions (0.3508 is 35.08%).

    Attributes:
        split: The split whose targets were ranked ("test" or "valid").
        n_negatives: Negatives per target; None for full ranking.
        seed: The seed of the negatives' draw.
        rows: One `MetricRow` per method, setting and domain (`ndcg_10`, `hr_10`, `mrr`,
            ..., and `n`, the number of cases).
        cases: Each case's rank per (method, setting), for paired comparisons.
        slices: NDCG@10 on the rare-target and cold-history slices.
        domain_names: The names of the domain indices in `cases`.
        comparisons: The paired differences from one method, when the run was asked for
            them (`compare=`).
    """

    split: str
    n_negatives: int | None
    seed: int
    rows: list[MetricRow]
    cases: dict[tuple[str, str], CaseRanks] = field(default_factory=dict)
    slices: list[SliceRow] = field(default_factory=list)
    domain_names: tuple[str, ...] = ()
    comparisons: list[PairedDifference] = field(default_factory=list)

    def row(self, method: str, setting: str, domain: str) -> MetricRow:
        """The row of one method, setting and domain (KeyError if the run has none)."""
        for r in self.rows:
            if (r.method, r.setting, r.domain) == (method, setting, domain):
                return r
        raise KeyError((method, setting, domain))

    def slice_dicts(self) -> list[dict[str, Any]]:
        """The slices' rows as plain dicts, as `eval --json` gives them under `slices`."""
        return [
            {
                "slice": r.slice,
                "method": r.method,
                "setting": r.setting,
                "domain": r.domain,
                "ndcg@10": r.ndcg_10,
                "n": r.n,
            }
            for r in self.slices
        ]

    def as_dicts(self) -> list[dict[str, Any]]:
        """Rows as plain dicts (metric names as displayed), ready for JSON or CSV."""
        return [
            {
                "method": r.method,
                "setting": r.setting,
                "domain": r.domain,
                **{m: r.metric(m) for m in METRICS},
                "n": r.n,
            }
            for r in self.rows
        ]
