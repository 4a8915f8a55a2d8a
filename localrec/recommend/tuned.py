"""The tuned hybrid, ready to rank a catalogue: the scoring core's `HybridModel` over a
database's vectors and item-kNN over its events, or over a pack (`Pack.hybrid`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np

from localrec.data.loading import store_sequences
from localrec.recommend.history import HistoryItem, UserProfile
from localrec.recommend.results import OTHERS_HAD_BOTH, OTHERS_NEXT, OTHERS_TWO_STEPS, Explanation
from localrec.scoring.adapter import DomainAdapter, TrainedAdapter, aligned
from localrec.scoring.hybrid import HybridModel
from localrec.scoring.memo import CandidateMemo
from localrec.store.db import ItemMatrix, Store

__all__ = ["MIN_REASON_SHARE", "TunedCatalogue"]

# Co-occurrence reasons below this share of the CF score are not shown (but the largest).
MIN_REASON_SHARE = 0.05
# Catalogue rows kept per ItemMatrix ranked (a domain's, or a candidate pool's).
_ROWS_KEPT = 16


@dataclass
class _ServedDomain(DomainAdapter):
    """A domain's adapter that is done learning, as a device ranks with it: the item
    representations of the last few candidate arrays it scored are kept. A device ranks
    the same domain again and again, and passing every item of it through the projection
    was most of a recommend's time (62 of 148 ms per Food-Kitchen kitchen list, measured);
    gathering them per candidate took another 1.5 ms."""

    def __post_init__(self) -> None:
        self._reps: CandidateMemo[tuple[np.ndarray, np.ndarray]] = CandidateMemo()

    def candidate_reps(self, vectors: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        def make() -> tuple[np.ndarray, np.ndarray]:
            reps = super(_ServedDomain, self).candidate_reps(vectors, candidates)
            reps.setflags(write=False)
            return vectors, reps

        kept = self._reps.get(candidates, make)
        if kept[0] is not vectors:  # other vectors: what was kept is of no use
            self._reps = CandidateMemo()
            kept = self._reps.get(candidates, make)
        return kept[1]


def served(adapter: TrainedAdapter) -> TrainedAdapter:
    """The adapter with each domain's part as a `_ServedDomain` (its weights are shared,
    not copied); training never sees one, so nothing it keeps can go stale."""
    return replace(
        adapter,
        domains={
            d: _ServedDomain(**{f.name: getattr(part, f.name) for f in fields(part)})
            for d, part in adapter.domains.items()
        },
    )


# The reason each collaborative part gives.
REASONS = {
    "itemknn": OTHERS_NEXT,
    "walk": OTHERS_TWO_STEPS,
    "cooccurrence": OTHERS_HAD_BOTH,
    "rp3beta": OTHERS_HAD_BOTH,
}


class TunedCatalogue:
    """A `HybridModel` over a catalogue's items (`everything`, in the model's row order)."""

    def __init__(self, model: HybridModel, everything: ItemMatrix):
        self.model = replace(model, adapter=served(model.adapter))
        self.adapter = self.model.adapter
        self.everything = everything
        self.index = everything.index()
        self.domain_index = {n: i for i, n in enumerate(model.adapter.domain_names)}
        self._rows: dict[int, tuple[ItemMatrix, np.ndarray]] = {}

    @classmethod
    def from_store(
        cls, store: Store, adapter: TrainedAdapter, model: str, dim: int, mean_half_life: float
    ) -> TunedCatalogue:
        """Over one database: its vectors, and item-kNN over every user's events in it."""
        everything = store.item_matrix(model, None, dim=dim)
        index = everything.index()
        adapter = aligned(adapter, index, everything.matrix)
        domains = adapter.domain_numbers(everything.domains)
        hybrid = HybridModel.over_sequences(
            adapter,
            everything.matrix,
            domains,
            store_sequences(store, index),
            mean_half_life=mean_half_life,
        )
        return cls(hybrid, everything)

    def knows(self, domain: str) -> bool:
        return self.domain_index.get(domain, -1) in self.adapter.domains

    def rows(self, matrix: ItemMatrix) -> np.ndarray:
        """The catalogue rows of `matrix`'s items, worked out once per matrix (a catalogue
        keeps each domain's matrix while its items do not change)."""
        kept = self._rows.get(id(matrix))
        if kept is not None and kept[0] is matrix:
            return kept[1]
        rows = np.array([self.index[i] for i in matrix.ids], dtype=np.int64)
        if len(self._rows) >= _ROWS_KEPT:
            self._rows = {}
        self._rows[id(matrix)] = (matrix, rows)
        return rows

    def scores(
        self, profile: UserProfile, matrix: ItemMatrix, domain: str, blend: bool
    ) -> np.ndarray:
        """The hybrid's (or, without `blend`, the adapter's) scores of `matrix`'s items."""
        history = profile.history(self.index)
        candidates = self.rows(matrix)[None, :]
        d = self.domain_index[domain]
        scored = self.model.score if blend else self.model.tuned
        out: np.ndarray = scored([history], candidates, d)[0]
        return out

    def cf_reasons(
        self, profile: UserProfile, matrix: ItemMatrix, domain: str, top: int = 3
    ) -> Callable[[int], tuple[Explanation, ...]] | None:
        """For a row of `matrix`, the one to three history items whose co-occurrences put it
        up in the hybrid, by their share of its CF score: direct follow-ups (item-kNN)
        first, else the first other collaborative part the hybrid uses that reaches it (the
        walk's two steps, then items others had together); () where CF played no part.
        None when CF plays no part in this user's hybrid at all."""
        found = self.model.cf_parts(profile.history(self.index), self.domain_index[domain])
        if found is None:
            return None
        history, used = found
        known = [i for i in profile.items if i.item_id is not None and i.item_id in self.index]
        order = ["itemknn", *(name for name in used if name != "itemknn")]

        def reasons(row: int) -> tuple[Explanation, ...]:
            target = self.index[matrix.ids[row]]
            for name in order:
                parts = self.model.contributions(name, history, target)
                if parts.sum() > 0:
                    break
            reason = REASONS[name]
            total = float(parts.sum())
            if total <= 0:
                return ()
            shares: dict[str, tuple[float, HistoryItem]] = {}
            for part, item in zip(parts.tolist(), known, strict=True):
                key = item.item_id or item.text
                before = shares.get(key, (0.0, item))[0]
                shares[key] = (before + part / total, item)
            best = sorted(shares.values(), key=lambda pair: -pair[0])[:top]
            # A sliver of the score is no reason; the largest part always is.
            return tuple(
                Explanation(
                    item.item_id,
                    item.name,
                    item.action,
                    reason,
                    cf_share=share,
                    text=item.text,
                    value=item.value,
                )
                for n, (share, item) in enumerate(best)
                if share > 0 and (n == 0 or share >= MIN_REASON_SHARE)
            )

        return reasons
