"""The tuned hybrid: the one rule that ranks for `recommend`, `eval` and `tune`.

    s(u, i) = z(adapter) + w * z(cf),   cf = z(item-kNN) + u * z(its two-step walk)

z standardises each history's scores over its candidates; w and u are chosen per domain
and setting on the validation split. The setting is `mixed` when any catalogue item of the
history is of the target domain, else `cross`. Candidates seen 1 to RARE_TARGET_MAX times
in training may get a CF weight of their own. A cold user (no history item seen in
training) gets nothing from CF or the learned input vectors: their hybrid is
z(adapter) + c * z(zero-shot text) instead. A domain without an adapter is ranked by
zero-shot text alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from localrec.data.protocol import SETTINGS, Setting
from localrec.scoring.adapter import TrainedAdapter
from localrec.scoring.history import History
from localrec.scoring.itemknn import ItemKNNScorer
from localrec.scoring.profiles import MEAN_HALF_LIFE, zero_shot_scores

__all__ = [
    "SETTINGS",
    "HybridModel",
    "Setting",
    "cf_scores",
    "combine_cf",
    "hybrid_scores",
    "setting_of",
    "standardise",
]

ItemArray = npt.NDArray[np.integer[Any]]
# The zero-shot user representation that stands in where the adapter has no say.
ZERO_SHOT = "zero-shot"


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
    if weight >= 1e5:
        return standardise(knn_scores) + 1e-3 * standardise(adapter_scores)
    knn_weight: Any = weight
    if rare is not None and rare_weight is not None:
        knn_weight = np.where(rare, rare_weight, weight)
    out: np.ndarray = standardise(adapter_scores) + knn_weight * standardise(knn_scores)
    return out


def cf_scores(
    knn: ItemKNNScorer,
    histories: Sequence[ItemArray],
    candidates: np.ndarray,
    target_domain: int,
    two_hop_weight: float,
) -> np.ndarray:
    """The collaborative score of the hybrid: z(item-kNN) + two_hop_weight * z(its two-step
    walk), or item-kNN alone at weight 0 (the walk is then not computed)."""
    one_hop = np.asarray(knn.score(histories, candidates, target_domain), np.float64)
    if two_hop_weight == 0:
        return one_hop
    two_hop = np.asarray(knn.two_hop(histories, candidates), np.float64)
    return combine_cf(one_hop, two_hop, two_hop_weight)


def combine_cf(one_hop: np.ndarray, two_hop: np.ndarray, weight: float) -> np.ndarray:
    if weight == 0:
        return one_hop
    out: np.ndarray = standardise(one_hop) + weight * standardise(two_hop)
    return out


@dataclass
class HybridModel:
    """A tuned adapter over one catalogue, with item-kNN over the training interactions.

    `vectors` are the catalogue's unit item vectors, `domains` its items' domains in the
    adapter's numbering (`adapter.domain_names`); the adapter is aligned to that order.
    """

    adapter: TrainedAdapter
    vectors: np.ndarray
    domains: np.ndarray
    knn: ItemKNNScorer
    mean_half_life: float = MEAN_HALF_LIFE

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

    def score(
        self, histories: Sequence[History], candidates: np.ndarray, domain: int
    ) -> np.ndarray:
        """The hybrid's score of each history's row of `candidates` (catalogue rows)."""
        if not self.knows(domain):
            return self.zero_shot(histories, candidates)
        model = self.adapter.domains[domain]
        tuned = np.asarray(self.tuned(histories, candidates, domain), np.float64)
        known = [h.known for h in histories]
        settings = [setting_of(h, self.domains, domain) for h in histories]
        cold = [self.adapter.cold(k) for k in known]
        warm = [i for i, c in enumerate(cold) if not c]
        cf: dict[int, np.ndarray] = {}
        for setting in SETTINGS:  # each setting's warm rows, with its walk weight
            rows = [i for i in warm if settings[i] == setting]
            if rows:
                walk = model.two_hop_weight.get(setting, 0.0)
                scored = cf_scores(
                    self.knn, [known[i] for i in rows], candidates[rows], domain, walk
                )
                cf.update((i, scored[n : n + 1]) for n, i in enumerate(rows))
        cold_rows = [i for i, c in enumerate(cold) if c and model.cold_weight.get(settings[i], 0.0)]
        text: dict[int, np.ndarray] = {}
        if cold_rows:
            scored = self.zero_shot([histories[i] for i in cold_rows], candidates[cold_rows])
            text = dict(zip(cold_rows, np.asarray(scored, np.float64), strict=True))
        out = np.empty_like(tuned)
        for i in range(len(histories)):
            setting = settings[i]
            if cold[i]:
                if i in text:
                    weight = model.cold_weight[setting]
                    out[i] = hybrid_scores(tuned[i : i + 1], text[i][None, :], weight)[0]
                else:  # no text weight: the adapter alone, on the hybrid's scale
                    out[i] = standardise(tuned[i : i + 1])[0]
                continue
            rare = self.adapter.rare(candidates[i : i + 1])
            out[i] = hybrid_scores(
                tuned[i : i + 1], cf[i], model.hybrid_weight[setting], rare, model.rare_weight
            )[0]
        return out

    def cf_parts(self, history: History, domain: int) -> tuple[np.ndarray, bool] | None:
        """The history's catalogue rows CF goes through, and whether the walk has a weight;
        None when CF plays no part in this history's hybrid (for explanations)."""
        if not self.knows(domain):
            return None
        model = self.adapter.domains[domain]
        setting = setting_of(history, self.domains, domain)
        known = history.known
        if not model.hybrid_weight.get(setting, 0.0) or not len(known):
            return None
        if self.adapter.cold(known):
            return None  # a cold user's hybrid has no CF part
        return known, bool(model.two_hop_weight.get(setting, 0.0))
