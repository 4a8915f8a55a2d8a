"""The tuned hybrid: the one rule that ranks for `recommend`, `eval` and `tune`.

    s(u, i) = z(adapter - shrink * bias) + w * z(cf) + p * z(log(1 + popularity))
    cf      = sum over the chosen parts k of v_k * z(part_k)

z standardises each history's scores over its candidates. The collaborative parts are
item-kNN, its two-step walk, plain co-occurrence and RP3beta (`CF_PARTS`); which of them
and their weights v, the adapter's weight against them (w), how much of its learned
item bias the adapter part keeps, and the weight of popularity (p, negative to push
hubs down) are chosen per domain and setting on validation (`localrec.tuning`). The
setting is `mixed` when any catalogue item of the history is of the target domain, else
`cross`. Candidates seen 1 to RARE_TARGET_MAX times in training may get a CF weight of
their own. A cold user (no history item seen in training) gets nothing from CF or the
learned input vectors: their hybrid is z(adapter) + c * z(zero-shot text) instead. A
domain without an adapter is ranked by zero-shot text alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from localrec.data.protocol import SETTINGS, Setting
from localrec.scoring.adapter import DomainAdapter, TrainedAdapter
from localrec.scoring.history import History
from localrec.scoring.item_models import item_item_part
from localrec.scoring.itemknn import ItemItemScorer, ItemKNNScorer
from localrec.scoring.memo import CandidateMemo
from localrec.scoring.profiles import MEAN_HALF_LIFE, zero_shot_scores

__all__ = [
    "CF_PARTS",
    "ITEM_ITEM_PARTS",
    "SETTINGS",
    "HybridModel",
    "Setting",
    "blend",
    "cf_weights",
    "combine_parts",
    "combine_standardised",
    "hybrid_scores",
    "popularity_part",
    "setting_of",
    "standardise",
    "used_parts",
]

ItemArray = npt.NDArray[np.integer[Any]]
# The zero-shot user representation that stands in where the adapter has no say.
ZERO_SHOT = "zero-shot"
# The collaborative parts the hybrid may blend, simplest first: item-kNN's forward
# weights, their two-step walk, then the order-blind item-to-item models.
CF_PARTS = ("itemknn", "walk", "cooccurrence", "rp3beta")
# The parts that are an `ItemItemScorer` of their own (not item-kNN or its walk).
ITEM_ITEM_PARTS = ("cooccurrence", "rp3beta")


def setting_of(history: History, item_domains: np.ndarray, domain: int) -> Setting:
    """`mixed` when any catalogue item of the history is of `domain`, else `cross`."""
    return "mixed" if history.has_domain(item_domains, domain) else "cross"


def standardise(scores: np.ndarray) -> np.ndarray:
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    out: np.ndarray = (scores - mean) / np.maximum(std, 1e-9)
    return out


def hybrid_scores(
    adapter_scores: np.ndarray,
    knn_scores: np.ndarray,
    weight: float,
    rare: np.ndarray | None = None,
    rare_weight: float | None = None,
) -> np.ndarray:
    """z(adapter) + weight * z(collaborative score); a huge weight means CF with adapter
    tie-breaks.

    Candidates flagged in `rare` (seen 1 to RARE_TARGET_MAX times in training) get `rare_weight`
    instead, when one was chosen.
    """
    return blend(standardise(adapter_scores), standardise(knn_scores), weight, rare, rare_weight)


def blend(
    z_adapter: np.ndarray,
    z_cf: np.ndarray,
    weight: float,
    rare: np.ndarray | None = None,
    rare_weight: float | None = None,
) -> np.ndarray:
    """`hybrid_scores` of scores already standardised (`tune` tries many weights on the
    same ones)."""
    if weight >= 1e5:
        return z_cf + 1e-3 * z_adapter
    knn_weight: Any = weight
    if rare is not None and rare_weight is not None:
        knn_weight = np.where(rare, rare_weight, weight)
    out: np.ndarray = z_adapter + knn_weight * z_cf
    return out


def combine_parts(parts: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """sum of weight * z(part) over the weighted parts (in CF_PARTS order)."""
    used = {name: standardise(parts[name]) for name in CF_PARTS if weights.get(name, 0.0)}
    return combine_standardised(used, weights)


def combine_standardised(
    z_parts: Mapping[str, np.ndarray], weights: Mapping[str, float]
) -> np.ndarray:
    """`combine_parts` of parts already standardised."""
    total: np.ndarray | None = None
    for name in CF_PARTS:
        weight = weights.get(name, 0.0)
        if weight:
            term = weight * z_parts[name]
            total = term if total is None else total + term
    if total is None:
        raise ValueError(f"no collaborative part has a weight: {dict(weights)}")
    return total


def cf_weights(model: DomainAdapter, setting: str) -> dict[str, float]:
    """The setting's collaborative parts and their weights (item-kNN alone if none)."""
    weights = {k: v for k, v in model.cf_weights.get(setting, {}).items() if v}
    return weights or {"itemknn": 1.0}


def popularity_part(counts: np.ndarray | None, candidates: np.ndarray) -> np.ndarray:
    """log(1 + training count) of each candidate (zeros without counts)."""
    if counts is None:
        return np.zeros(candidates.shape)
    out: np.ndarray = np.log1p(np.asarray(counts, np.float64)[candidates])
    return out


@dataclass
class HybridModel:
    """A tuned adapter over one catalogue, with item-kNN over the training interactions.

    `vectors` are the catalogue's unit item vectors, `domains` its items' domains in the
    adapter's numbering (`adapter.domain_names`); the adapter is aligned to that order.
    `others` holds the order-blind collaborative parts (ITEM_ITEM_PARTS) the adapter's
    weights use, over the same rows.
    """

    adapter: TrainedAdapter
    vectors: np.ndarray
    domains: np.ndarray
    knn: ItemKNNScorer
    mean_half_life: float = MEAN_HALF_LIFE
    others: dict[str, ItemItemScorer] = field(default_factory=dict)
    # What each candidate array alone gives: z(log(1 + popularity)) and the rare flags.
    _candidate_parts: CandidateMemo[tuple[np.ndarray, np.ndarray]] = field(
        default_factory=CandidateMemo, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        missing = [name for name in used_parts(self.adapter) if name not in self.others]
        if missing:
            raise ValueError(f"the adapter's hybrid uses {', '.join(missing)}: pass it in `others`")

    @classmethod
    def over_sequences(
        cls,
        adapter: TrainedAdapter,
        vectors: np.ndarray,
        domains: np.ndarray,
        sequences: Sequence[ItemArray],
        *,
        knn: ItemKNNScorer | None = None,
        others: Mapping[str, ItemItemScorer] | None = None,
        mean_half_life: float = MEAN_HALF_LIFE,
    ) -> HybridModel:
        """The hybrid with its collaborative parts fitted on `sequences` (catalogue rows),
        but those already built (`knn`, `others`)."""
        n = len(vectors)
        built = dict(others or {})
        parts = {
            name: built.get(name) or item_item_part(name, sequences, n)
            for name in used_parts(adapter)
        }
        knn = knn or ItemKNNScorer(sequences, n)
        return cls(adapter, vectors, domains, knn, mean_half_life, parts)

    def knows(self, domain: int) -> bool:
        return domain in self.adapter.domains

    def zero_shot(self, histories: Sequence[History], candidates: np.ndarray) -> np.ndarray:
        """The zero-shot text score (max-sim + item-mean blend), where no adapter has a say."""
        return zero_shot_scores(
            ZERO_SHOT, histories, candidates, self.vectors, half_life=self.mean_half_life
        )

    def tuned(
        self, histories: Sequence[History], candidates: np.ndarray, domain: int
    ) -> np.ndarray:
        """The adapter's scores alone; zero-shot text for a domain it was not kept for."""
        if not self.knows(domain):
            return self.zero_shot(histories, candidates)
        return self.adapter.scores(histories, candidates, domain, self.vectors, self.domains)

    def part(
        self, name: str, histories: Sequence[ItemArray], candidates: np.ndarray, domain: int
    ) -> np.ndarray:
        """One collaborative part's raw scores of each history's row of candidates."""
        if name == "itemknn":
            scores = self.knn.score(histories, candidates, domain)
        elif name == "walk":
            scores = self.knn.two_hop(histories, candidates)
        else:
            scores = self.others[name].score(histories, candidates, domain)
        return np.asarray(scores, np.float64)

    def score(
        self, histories: Sequence[History], candidates: np.ndarray, domain: int
    ) -> np.ndarray:
        """The hybrid's score of each history's row of `candidates` (catalogue rows)."""
        if not self.knows(domain):
            return self.zero_shot(histories, candidates)
        tuned = np.asarray(self.tuned(histories, candidates, domain), np.float64)
        known = [h.known for h in histories]

        def part(name: str, rows: list[int]) -> np.ndarray:
            return self.part(name, [known[i] for i in rows], candidates[rows], domain)

        def text(rows: list[int]) -> np.ndarray:
            return self.zero_shot([histories[i] for i in rows], candidates[rows])

        return self.blend_rows(histories, candidates, domain, tuned, part, text)

    def blend_rows(
        self,
        histories: Sequence[History],
        candidates: np.ndarray,
        domain: int,
        tuned: np.ndarray,
        part: Callable[[str, list[int]], np.ndarray],
        text: Callable[[list[int]], np.ndarray],
    ) -> np.ndarray:
        """`score`'s rule, given the adapter's scores (float64) of the rows of a domain
        the adapter knows, a collaborative part's raw scores of some rows (`part(name,
        rows)`) and zero-shot text's (`text(rows)`): asked only for what the rule uses.
        `tune` passes what it scored already."""
        model = self.adapter.domains[domain]
        known = [h.known for h in histories]
        settings = [setting_of(h, self.domains, domain) for h in histories]
        cold = [self.adapter.cold(k) for k in known]
        warm = [i for i, c in enumerate(cold) if not c]
        cf: dict[int, np.ndarray] = {}
        for setting in SETTINGS:  # each setting's warm rows, with its parts and weights
            rows = [i for i in warm if settings[i] == setting]
            if rows:
                weights = cf_weights(model, setting)
                parts = {name: np.asarray(part(name, rows), np.float64) for name in weights}
                scored = combine_parts(parts, weights)
                cf.update((i, scored[n : n + 1]) for n, i in enumerate(rows))
        cold_rows = [i for i, c in enumerate(cold) if c and model.cold_weight.get(settings[i], 0.0)]
        texts: dict[int, np.ndarray] = {}
        if cold_rows:
            scored = text(cold_rows)
            texts = dict(zip(cold_rows, np.asarray(scored, np.float64), strict=True))
        popularity, rare_rows = self._candidate_parts.get(
            candidates, lambda: self._of_candidates(candidates)
        )
        out = np.empty_like(tuned)
        for i in range(len(histories)):
            setting = settings[i]
            if cold[i]:
                if i in texts:
                    weight = model.cold_weight[setting]
                    out[i] = hybrid_scores(tuned[i : i + 1], texts[i][None, :], weight)[0]
                else:  # no text weight: the adapter alone, on the hybrid's scale
                    out[i] = standardise(tuned[i : i + 1])[0]
                continue
            shrink = model.bias_shrink.get(setting, 0.0)
            own = tuned[i : i + 1] - shrink * model.bias[candidates[i : i + 1]]
            rare = rare_rows[i : i + 1]
            out[i] = hybrid_scores(
                own, cf[i], model.hybrid_weight[setting], rare, model.rare_weight
            )[0]
            pop = model.popularity_weight.get(setting, 0.0)
            if pop:
                out[i] += pop * popularity[i]
        return out

    def _of_candidates(self, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's z(log(1 + popularity)) and rare flags: the candidates' alone."""
        popularity = popularity_part(self.adapter.counts, candidates)
        z = np.zeros(popularity.shape)
        for i in range(len(candidates)):
            z[i] = standardise(popularity[i : i + 1])[0]
        rare = self.adapter.rare(candidates)
        z.setflags(write=False)
        rare.setflags(write=False)
        return z, rare

    def cf_parts(self, history: History, domain: int) -> tuple[np.ndarray, tuple[str, ...]] | None:
        """The history's catalogue rows CF goes through, and the collaborative parts with a
        weight (in CF_PARTS order); None when CF plays no part in this history's hybrid
        (for explanations)."""
        if not self.knows(domain):
            return None
        model = self.adapter.domains[domain]
        setting = setting_of(history, self.domains, domain)
        known = history.known
        if not model.hybrid_weight.get(setting, 0.0) or not len(known):
            return None
        if self.adapter.cold(known):
            return None  # a cold user's hybrid has no CF part
        weights = cf_weights(model, setting)
        return known, tuple(name for name in CF_PARTS if name in weights)

    def contributions(self, name: str, history: np.ndarray, target: int) -> np.ndarray:
        """Each history item's part in `target`'s score under one collaborative part."""
        if name in ("itemknn", "walk"):
            return self.knn.contributions(history, target, two_hop=name == "walk")
        return self.others[name].contributions(history, target)


def used_parts(adapter: TrainedAdapter) -> tuple[str, ...]:
    """The order-blind parts (ITEM_ITEM_PARTS) some domain and setting of `adapter` weighs."""
    used = {
        name
        for model in adapter.domains.values()
        for weights in model.cf_weights.values()
        for name, weight in weights.items()
        if weight
    }
    return tuple(name for name in ITEM_ITEM_PARTS if name in used)
