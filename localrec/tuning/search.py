"""The search for one domain and setting's hybrid on validation cases (`Cell`, `choose_cell`).

1. The collaborative part: the best single part (item-kNN, its walk, co-occurrence or
   RP3beta), then forward selection: the part and weight that add the most are added
   only while the richer score beats the simpler by more than one standard error of the
   paired per-case difference.
2. The blend: for each share of the adapter's item bias left out (0, half, all), the
   adapter's weight against the collaborative score, then popularity's weight (negative
   weights push popular items down). Two guards decide which blends may be served:
   - its NDCG@10 is not below that of any of its components alone (the adapter, each
     collaborative part it uses, popularity);
   - its coverage@10 (distinct items in the top 10s over the domain's items) is not below
     item-kNN's: the learned bias and the walk both favour a few popular items, and a hub
     that tops every list is no recommendation.
   Of the blends that pass both (else the first guard alone, else all), the simplest
   (no bias left out, no popularity) is preferred unless a richer one is better by more
   than one standard error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from localrec.data.protocol import (
    coverage_at_k,
    hub_share,
    ndcg_per_case,
    rank_of_target,
    top_k_items,
)
from localrec.scoring.hybrid import CF_PARTS, blend, combine_standardised, standardise
from localrec.tuning.rules import best_weight, simplest_within_error

__all__ = [
    "BIAS_SHRINKS",
    "HYBRID_WEIGHTS",
    "PART_WEIGHTS",
    "POPULARITY_WEIGHTS",
    "Cell",
    "Choice",
    "Standardised",
    "choose_cell",
]

# The adapter's weight against CF: 0 is the adapter alone, 1e6 CF with adapter tie-breaks.
HYBRID_WEIGHTS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 1e6)
# A collaborative part's weight beside the parts already chosen.
PART_WEIGHTS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
# Shares of the adapter's learned item bias left out of its part of the hybrid.
BIAS_SHRINKS = (0.0, 0.5, 1.0)
# Popularity's weight in the hybrid, beside the adapter's 1.
POPULARITY_WEIGHTS = (-1.0, -0.75, -0.5, -0.35, -0.25, -0.15, -0.1, 0.0, 0.1, 0.25)
TOP = 10


@dataclass(frozen=True, eq=False)
class Cell:
    """One setting's validation cases of a domain, with every score the hybrid may blend:
    the adapter's, its item bias, each collaborative part's and log(1 + popularity)."""

    tuned: np.ndarray
    bias: np.ndarray
    parts: Mapping[str, np.ndarray]
    popularity: np.ndarray
    cands: np.ndarray
    rare: np.ndarray  # candidates seen 1 to RARE_TARGET_MAX times in training
    rare_target: np.ndarray  # cases whose target is such an item
    domain_size: int

    def standardised(self) -> Standardised:
        """The scores the hybrid standardises, standardised once (the search tries many
        weights on the same ones)."""
        return Standardised(self)


@dataclass
class Standardised:
    """A cell's standardised scores, each made once and kept: the parts, the adapter's
    score for a share of its bias left out, the collaborative score per choice of parts,
    popularity. Local to one search: a cell is frozen, so they cannot go stale."""

    cell: Cell
    _parts: dict[str, np.ndarray] = field(default_factory=dict)
    _own: dict[float, np.ndarray] = field(default_factory=dict)
    _cf: dict[tuple[float, ...], np.ndarray] = field(default_factory=dict)
    _popularity: np.ndarray | None = None

    def part(self, name: str) -> np.ndarray:
        if name not in self._parts:
            self._parts[name] = standardise(self.cell.parts[name])
        return self._parts[name]

    def cf(self, weights: Mapping[str, float]) -> np.ndarray:
        """The collaborative score, unstandardised (`combine_parts`)."""
        used = {name: self.part(name) for name in CF_PARTS if weights.get(name, 0.0)}
        return combine_standardised(used, weights)

    def z_cf(self, weights: Mapping[str, float]) -> np.ndarray:
        key = tuple(weights.get(name, 0.0) for name in CF_PARTS)
        if key not in self._cf:
            self._cf[key] = standardise(self.cf(weights))
        return self._cf[key]

    def z_own(self, shrink: float) -> np.ndarray:
        """z(adapter - shrink * bias), kept for the last share asked only (the search
        asks for one share after another)."""
        if shrink not in self._own:
            cell = self.cell
            own = standardise(cell.tuned - shrink * cell.bias if shrink else cell.tuned)
            self._own = {shrink: own}
        return self._own[shrink]

    def hybrid(
        self,
        weights: Mapping[str, float],
        weight: float,
        shrink: float,
        popularity: float,
        rare_weight: float | None = None,
    ) -> np.ndarray:
        """The served rule (`HybridModel.score`) on these cases, for a warm user."""
        out = blend(self.z_own(shrink), self.z_cf(weights), weight, self.cell.rare, rare_weight)
        if popularity:
            if self._popularity is None:
                self._popularity = standardise(self.cell.popularity)
            out = out + popularity * self._popularity
        return out


@dataclass
class Choice:
    """What `choose_cell` chose, its validation NDCG@10 and notes on how (for `tune`'s
    summary): each component's NDCG@10 alone, coverage@10 and hub share of the hybrid
    and of item-kNN, which guards held, the number of cases."""

    cf_weights: dict[str, float]
    weight: float
    shrink: float
    popularity: float
    ndcg: float
    notes: dict[str, float]


@dataclass
class _Blend:
    shrink: float
    weight: float
    popularity: float
    cases: np.ndarray
    coverage: float
    hub: float

    @property
    def complexity(self) -> int:
        return int(self.shrink != 0) + int(self.popularity != 0)


def choose_cell(cell: Cell, ties: np.ndarray) -> Choice:
    """The hybrid of one domain and setting (module docstring)."""
    tied = ties[cell.cands]

    def case_ndcg(scores: np.ndarray, broken: bool = False) -> np.ndarray:
        return ndcg_per_case(rank_of_target(scores if broken else scores + tied), TOP)

    def lists(broken: np.ndarray) -> tuple[float, float]:
        tops = top_k_items(broken, cell.cands, TOP)
        return coverage_at_k(tops.ravel(), cell.domain_size), hub_share(tops, cell.cands)

    singles = {name: case_ndcg(cell.parts[name]) for name in CF_PARTS}
    weights = _collaborative(cell.standardised(), singles, case_ndcg)
    z = cell.standardised()  # of the chosen parts only: the others' are let go
    blends: list[_Blend] = []
    for shrink in BIAS_SHRINKS:

        def blended(weight: float, shrink: float = shrink) -> np.ndarray:
            return case_ndcg(z.hybrid(weights, weight, shrink, 0.0))

        weight, _ = best_weight(HYBRID_WEIGHTS, blended)
        for popularity in POPULARITY_WEIGHTS:
            broken = z.hybrid(weights, weight, shrink, popularity) + tied
            blends.append(
                _Blend(shrink, weight, popularity, case_ndcg(broken, True), *lists(broken))
            )
    components = {
        "adapter": case_ndcg(cell.tuned),
        **{name: singles[name] for name in weights},
        "popularity": case_ndcg(cell.popularity),
    }
    floor = max(float(c.mean()) for c in components.values())
    knn_coverage, knn_hub = lists(cell.parts["itemknn"] + tied)
    above = [b for b in blends if float(b.cases.mean()) >= floor]
    guarded = [b for b in above if b.coverage >= knn_coverage]
    pool = guarded or above or blends
    champions = []
    for complexity in (0, 1, 2):
        same = [b for b in pool if b.complexity == complexity]
        if same:
            champions.append(max(same, key=lambda b: float(b.cases.mean())))
    chosen = champions[simplest_within_error([b.cases for b in champions])]
    notes = {
        "cases": float(len(cell.cands)),
        "coverage@10": chosen.coverage,
        "hub@10": chosen.hub,
        "itemknn coverage@10": knn_coverage,
        "itemknn hub@10": knn_hub,
        "guards": 2.0 if guarded else 1.0 if above else 0.0,
        **{f"ndcg {name}": float(c.mean()) for name, c in components.items()},
    }
    return Choice(
        weights,
        chosen.weight,
        chosen.shrink,
        chosen.popularity,
        float(chosen.cases.mean()),
        notes,
    )


def _collaborative(
    z: Standardised,
    singles: Mapping[str, np.ndarray],
    case_ndcg: Callable[[np.ndarray], np.ndarray],
) -> dict[str, float]:
    """The collaborative parts and their weights: the best single part, then the part and
    weight that add the most, while that beats the simpler score by more than one
    standard error of the paired per-case difference."""
    first = max(CF_PARTS, key=lambda name: float(singles[name].mean()))
    weights, current = {first: 1.0}, singles[first]
    while len(weights) < len(CF_PARTS):
        best: tuple[dict[str, float], np.ndarray] | None = None
        for name in CF_PARTS:
            if name in weights:
                continue
            for value in PART_WEIGHTS:
                trial = {**weights, name: value}
                cases = case_ndcg(z.cf(trial))
                if best is None or float(cases.mean()) > float(best[1].mean()):
                    best = (trial, cases)
        assert best is not None
        if simplest_within_error([current, best[1]]) == 0:
            break
        weights, current = best
    return weights
