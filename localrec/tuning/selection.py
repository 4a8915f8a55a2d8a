"""Choosing the hybrid's weights on the validation split, and whether to keep the adapter.

Every choice scores the validation cases with the protocol's candidates and tie-break, and
through the scoring core's own functions (`localrec.scoring.hybrid`). Per domain and
setting, in this order: the walk's weight in the collaborative score (on CF alone), the
learned model's weight against it, the zero-shot weight of a cold user, then one rare
weight per domain. The adapter is kept only if the hybrid, scored by the served rule
(`HybridModel.score`), beats zero-shot text by more than a standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from localrec.data.dataset import SequenceDataset
from localrec.data.protocol import (
    SETTINGS,
    Cases,
    draw_candidates,
    make_cases,
    metrics_from_ranks,
    ndcg_per_case,
    rank_of_target,
    tie_break,
)
from localrec.scoring.adapter import AdapterConfig, DomainAdapter, TrainedAdapter, rarely_seen
from localrec.scoring.history import histories_of_rows
from localrec.scoring.hybrid import HybridModel, combine_cf, hybrid_scores
from localrec.scoring.itemknn import ItemKNNScorer
from localrec.scoring.profiles import zero_shot_scores

__all__ = ["HYBRID_WEIGHTS", "TWO_HOP_WEIGHTS", "Validation", "choose_weights"]

HYBRID_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 1e6)
TWO_HOP_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


def choose_weights(
    adapter: DomainAdapter,
    valid: Validation,
    knn: ItemKNNScorer,
    seen: np.ndarray,
    counts: np.ndarray,
) -> str | None:
    """Set the adapter's hybrid, walk, cold and rare weights; why it is not worth keeping
    (its validation cases do not show it helps), or None."""
    name = valid.dataset.domain_names[adapter.domain]
    blends: dict[str, _Blend] = {}
    zero_shot_cases: dict[str, np.ndarray] = {}
    for s in SETTINGS:
        blend = valid.blend(adapter, knn, s, counts)
        zero_shot = valid.zero_shot_scores(s, adapter.domain)
        if blend is None or zero_shot is None:
            adapter.hybrid_weight[s] = 1.0  # no validation case to choose by
            continue
        blends[s] = blend
        zero_shot_cases[s] = valid.case_ndcg(zero_shot, blend.cands)
        adapter.two_hop_weight[s] = blend.choose_two_hop(valid)
        adapter.hybrid_weight[s], adapter.hybrid_ndcg[s] = _best_hybrid_weight(blend, valid)
        adapter.zero_shot_ndcg[s] = float(zero_shot_cases[s].mean())
        adapter.cold_weight[s] = _best_cold_weight(adapter, s, zero_shot, valid)
    adapter.rare_weight = _best_rare_weight(blends, adapter.hybrid_weight, valid)
    if not blends:
        return f"no validation case ends in {name!r}, so nothing shows it would help"
    served = valid.served(adapter, knn, seen, counts)
    hybrid_cases = {s: valid.case_ndcg(served[s], blends[s].cands) for s in blends}
    for setting, cases in hybrid_cases.items():  # as served: rare and cold weights too
        adapter.hybrid_ndcg[setting] = float(cases.mean())
    gains = np.concatenate([hybrid_cases[s] - zero_shot_cases[s] for s in blends])
    return _not_better(gains, adapter)


@dataclass
class _Blend:
    """One setting's validation cases of a domain, scored by the adapter, by item-kNN and by
    its two-step walk; `cf` is the collaborative score with the chosen two-hop weight."""

    tuned: np.ndarray
    knn: np.ndarray
    two_hop: np.ndarray
    cands: np.ndarray
    rare: np.ndarray  # candidates seen 1 to RARE_TARGET_MAX times in training
    rare_target: np.ndarray  # cases whose target is such an item
    cf: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.cf = self.knn

    def choose_two_hop(self, valid: Validation) -> float:
        """The two-step walk's weight with the best validation NDCG@10 of collaborative
        filtering alone (the first best, so 0 unless the walk helps); sets `cf`."""
        best_weight, _ = _first_best(
            TWO_HOP_WEIGHTS,
            lambda w: valid.ndcg(combine_cf(self.knn, self.two_hop, w), self.cands),
        )
        self.cf = combine_cf(self.knn, self.two_hop, best_weight)
        return best_weight


@dataclass
class Validation:
    """The validation split as `tune` scores it: cases and the protocol's candidates per
    setting, tie-broken as `evaluate` breaks them."""

    dataset: SequenceDataset
    vectors: np.ndarray
    config: AdapterConfig
    cases: dict[str, Cases]
    cands: dict[str, np.ndarray]
    ties: np.ndarray

    @classmethod
    def build(
        cls, dataset: SequenceDataset, vectors: np.ndarray, config: AdapterConfig
    ) -> Validation:
        cases: dict[str, Cases] = {s: make_cases(dataset.valid, dataset, s) for s in SETTINGS}
        # The evaluation protocol's draw; small catalogues get as many negatives as they have.
        n_neg = min(999, min(len(dataset.items_of_domain(d)) for d in range(dataset.n_domains)) - 1)
        cands = {s: draw_candidates(c, dataset, n_neg, 42) for s, c in cases.items()}
        return cls(dataset, vectors, config, cases, cands, tie_break(dataset.n_items))

    def rows(self, setting: str, d: int) -> np.ndarray:
        rows: np.ndarray = np.flatnonzero(self.cases[setting].domains == d)
        return rows

    def histories(self, setting: str, rows: np.ndarray) -> list[np.ndarray]:
        return [self.cases[setting].histories[i] for i in rows]

    def ndcg(self, scores: np.ndarray, cands: np.ndarray, cases: np.ndarray | None = None) -> float:
        """NDCG@10 of the protocol's ranks (of the `cases` rows only, if given)."""
        ranks = rank_of_target(scores + self.ties[cands])
        return metrics_from_ranks(ranks if cases is None else ranks[cases])["ndcg@10"]

    def tuned_scores(self, adapter: DomainAdapter, setting: str, rows: np.ndarray) -> np.ndarray:
        histories, cands = self.histories(setting, rows), self.cands[setting][rows]
        scores = adapter.scores(
            histories_of_rows(histories), cands, self.vectors, self.dataset.domains, self.config
        )
        as_float64: np.ndarray = scores.astype(np.float64)
        return as_float64

    def tuned_ndcg(self, adapter: DomainAdapter, setting: str) -> float:
        rows = self.rows(setting, adapter.domain)
        if not len(rows):
            return 0.0
        scores = self.tuned_scores(adapter, setting, rows)
        return self.ndcg(scores, self.cands[setting][rows])

    def blend(
        self, adapter: DomainAdapter, knn: ItemKNNScorer, setting: str, counts: np.ndarray
    ) -> _Blend | None:
        rows = self.rows(setting, adapter.domain)
        if not len(rows):
            return None
        cands = self.cands[setting][rows]
        histories = self.histories(setting, rows)
        knn_scores = knn.score(histories, cands, adapter.domain)
        rare = rarely_seen(counts[cands])
        return _Blend(
            self.tuned_scores(adapter, setting, rows),
            np.asarray(knn_scores, np.float64),
            np.asarray(knn.two_hop(histories, cands), np.float64),
            cands,
            rare,
            rare[:, 0],
        )

    def case_ndcg(self, scores: np.ndarray, cands: np.ndarray) -> np.ndarray:
        """Each case's NDCG@10, ranks as `ndcg` gives them."""
        return ndcg_per_case(rank_of_target(scores + self.ties[cands]), 10)

    def zero_shot_scores(self, setting: str, d: int) -> np.ndarray | None:
        """Scores of the zero-shot default (the text max-sim + mean blend)."""
        rows = self.rows(setting, d)
        if not len(rows):
            return None
        histories = histories_of_rows(self.histories(setting, rows))
        scores = zero_shot_scores("zero-shot", histories, self.cands[setting][rows], self.vectors)
        return np.asarray(scores, np.float64)

    def served(
        self, adapter: DomainAdapter, knn: ItemKNNScorer, seen: np.ndarray, counts: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Per setting, the validation cases of the adapter's domain as the hybrid serves
        them (`HybridModel.score`, the rule `recommend` and `eval` rank by)."""
        trained = TrainedAdapter(
            "",
            self.config,
            {adapter.domain: adapter},
            self.dataset.domain_names,
            [],
            seen,
            0,
            0.0,
            counts=counts,
        )
        model = HybridModel(trained, self.vectors, self.dataset.domains, knn)
        out: dict[str, np.ndarray] = {}
        for s in SETTINGS:
            rows = self.rows(s, adapter.domain)
            if len(rows):
                histories = histories_of_rows(self.histories(s, rows))
                out[s] = model.score(histories, self.cands[s][rows], adapter.domain)
        return out


def _best_cold_weight(
    adapter: DomainAdapter, setting: str, zero_shot: np.ndarray, valid: Validation
) -> float:
    """The zero-shot weight of a cold user's hybrid, chosen on the validation users made
    cold: the adapter without its learned input vectors (none for unseen items), and no
    CF (a cold history has no co-occurrences). The first best, so 0 unless text helps."""
    cold = replace(adapter, inputs=None)
    rows = valid.rows(setting, adapter.domain)
    cands = valid.cands[setting][rows]
    tuned = valid.tuned_scores(cold, setting, rows)
    weight, _ = _first_best(
        HYBRID_WEIGHTS, lambda w: valid.ndcg(hybrid_scores(tuned, zero_shot, w), cands)
    )
    return weight


def _not_better(gains: np.ndarray, adapter: DomainAdapter) -> str | None:
    """Why the hybrid's per-case validation gains over zero-shot text do not justify keeping
    it, or None. The gain must be positive and at least one standard error of the paired
    per-case difference: on a few dozen cases a small lead is noise."""
    learned = float(np.mean(list(adapter.hybrid_ndcg.values())))
    zero_shot = float(np.mean(list(adapter.zero_shot_ndcg.values())))
    scored = (
        f"on the validation split the tuned hybrid scored NDCG@10 {100 * learned:.2f}% "
        f"against {100 * zero_shot:.2f}% for zero-shot text"
    )
    if learned <= zero_shot or gains.mean() <= 0:
        return f"{scored}; it would make results worse"
    error = float(gains.std(ddof=1) / math.sqrt(len(gains))) if len(gains) > 1 else math.inf
    if gains.mean() < error:
        return (
            f"{scored}, a lead within noise on {len(gains)} validation cases (one standard "
            f"error: {100 * error:.2f} points); more history is needed to show it helps"
        )
    return None


def _best_hybrid_weight(blend: _Blend, valid: Validation) -> tuple[float, float]:
    """The collaborative weight with the best validation NDCG@10, and that NDCG."""
    return _first_best(
        HYBRID_WEIGHTS, lambda w: valid.ndcg(hybrid_scores(blend.tuned, blend.cf, w), blend.cands)
    )


def _first_best(weights: Sequence[float], ndcg_of: Callable[[float], float]) -> tuple[float, float]:
    """The weight with the highest `ndcg_of(weight)`, the earliest of equals, and that value."""
    best_weight, best_ndcg = weights[0], -math.inf
    for weight in weights:
        ndcg = ndcg_of(weight)
        if ndcg > best_ndcg:
            best_weight, best_ndcg = weight, ndcg
    return best_weight, best_ndcg


def _best_rare_weight(
    blends: dict[str, _Blend], weights: dict[str, float], valid: Validation
) -> float | None:
    """The collaborative weight for rarely seen candidates, or None to keep the setting's.

    The learned model knows little about an item seen once or twice, and its bias (which
    starts at log(1 + popularity)) ranks it low, while one co-occurrence is strong
    evidence for item-kNN. So the rule is a constraint: on the validation targets that are
    rarely seen (pooled over the settings: each alone is a few dozen cases), the hybrid
    must score at least item-kNN's NDCG@10; among the weights that do, the best NDCG@10 on
    all validation targets wins. If none does, or there is no such target, none is set.
    """
    if not any(blend.rare_target.any() for blend in blends.values()):
        return None
    rare_cases = np.concatenate([blend.rare_target for blend in blends.values()])

    def case_gains(score: Callable[[str, _Blend], np.ndarray]) -> np.ndarray:
        """Per-case NDCG@10 of every validation case, the settings one after another."""
        return np.concatenate([valid.case_ndcg(score(s, b), b.cands) for s, b in blends.items()])

    knn_rare = case_gains(lambda s, b: b.knn)[rare_cases].mean()
    best: tuple[float, float | None] | None = None
    for rare_weight in (None, *HYBRID_WEIGHTS[:-1]):

        def hybrid(setting: str, b: _Blend, w: float | None = rare_weight) -> np.ndarray:
            return hybrid_scores(b.tuned, b.cf, weights[setting], b.rare, w)

        gains = case_gains(hybrid)
        if gains[rare_cases].mean() < knn_rare:
            continue
        overall = float(gains.mean())
        if best is None or overall > best[0]:
            best = (overall, rare_weight)
    return None if best is None else best[1]
