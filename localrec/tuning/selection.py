"""Choosing the hybrid's weights on validation, and whether to keep the adapter.

`tune` on a dataset chooses on its validation split plus a case cut from each training
user's sequence (`localrec.data.protocol.held_out_from_training`): thousands of cases
per domain and setting, scored with the protocol's candidates and tie-break, by the
collaborative models fitted on the training sequences without the held-out items.

Per domain and setting (`localrec.tuning.search`): the collaborative parts, the
adapter's weight against them, how much of its item bias it keeps and popularity's
weight, under two guards (never below any component alone, coverage@10 not below
item-kNN's); then per domain a weight for rarely seen candidates, per setting the
zero-shot weight of a cold user. Between scores that the validation cases cannot tell
apart (a paired difference within one standard error) the simpler one wins. The adapter
is kept only if the hybrid, scored by the served rule (`HybridModel.score`), beats
zero-shot text by more than a standard error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from localrec.data.dataset import SequenceDataset
from localrec.data.protocol import (
    SETTINGS,
    Cases,
    draw_candidates,
    held_out_from_training,
    make_cases,
    metrics_from_ranks,
    ndcg_per_case,
    rank_of_target,
    tie_break,
    training_counts,
)
from localrec.scoring.adapter import AdapterConfig, DomainAdapter, TrainedAdapter, rarely_seen
from localrec.scoring.history import histories_of_rows
from localrec.scoring.hybrid import (
    CF_PARTS,
    ITEM_ITEM_PARTS,
    HybridModel,
    blend,
    standardise,
)
from localrec.scoring.item_models import item_item_part
from localrec.scoring.itemknn import ItemItemScorer, ItemKNNScorer
from localrec.scoring.profiles import zero_shot_scores
from localrec.tuning.rules import best_weight, paired_error
from localrec.tuning.search import HYBRID_WEIGHTS, Cell, choose_cell

__all__ = ["Scored", "Validation", "choose_weights"]

# Rows of validation cases the adapter scores at once (cases x candidates x dim floats).
_ROWS = 512
# Per setting, an adapter's scores of the validation cases of its domain
# (`Validation.tuned_ndcg`; a setting without such a case has none).
Scored = dict[str, np.ndarray]


def choose_weights(
    adapter: DomainAdapter, valid: Validation, scored: Scored | None = None
) -> str | None:
    """Set the adapter's hybrid, collaborative, popularity, cold and rare weights; why it
    is not worth keeping (its validation cases do not show it helps), or None. `scored`:
    this adapter's scores of the validation cases, if `tuned_ndcg` made them already."""
    name = valid.dataset.domain_names[adapter.domain]
    cells: dict[str, Cell] = {}
    zero_shots: dict[str, np.ndarray] = {}
    zero_shot_cases: dict[str, np.ndarray] = {}
    for s in SETTINGS:
        cell = valid.cell(adapter, s, scored)
        zero_shot = valid.zero_shot_scores(s, adapter.domain)
        if cell is None or zero_shot is None:
            adapter.hybrid_weight[s] = 1.0  # no validation case to choose by
            continue
        cells[s], zero_shots[s] = cell, zero_shot
        zero_shot_cases[s] = valid.case_ndcg(zero_shot, cell.cands)
        choice = choose_cell(cell, valid.ties)
        adapter.cf_weights[s] = choice.cf_weights
        adapter.hybrid_weight[s] = choice.weight
        adapter.bias_shrink[s] = choice.shrink
        adapter.popularity_weight[s] = choice.popularity
        adapter.choices[s] = choice.notes
        adapter.hybrid_ndcg[s] = choice.ndcg
        adapter.zero_shot_ndcg[s] = float(zero_shot_cases[s].mean())
        adapter.cold_weight[s] = _best_cold_weight(adapter, s, zero_shot, valid)
    adapter.rare_weight = _best_rare_weight(cells, adapter, valid)
    if not cells:
        return f"no validation case ends in {name!r}, so nothing shows it would help"
    served = valid.served(adapter, cells, zero_shots)
    hybrid_cases = {s: valid.case_ndcg(served[s], cells[s].cands) for s in cells}
    for setting, cases in hybrid_cases.items():  # as served: rare and cold weights too
        adapter.hybrid_ndcg[setting] = float(cases.mean())
    gains = np.concatenate([hybrid_cases[s] - zero_shot_cases[s] for s in cells])
    return _not_better(gains, adapter)


@dataclass
class Validation:
    """The validation cases as `tune` scores them: per setting, the cases and the protocol's
    candidates, tie-broken as `evaluate` breaks them, and the collaborative models fitted
    on the training sequences. The parts' scores are computed once per setting and domain
    and kept, so that several seeds' adapters are chosen on the same ones."""

    dataset: SequenceDataset
    vectors: np.ndarray
    config: AdapterConfig
    cases: dict[str, Cases]
    cands: dict[str, np.ndarray]
    ties: np.ndarray
    held_out: int = 0  # how many cases were cut from the training sequences (they come first)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _knn: ItemKNNScorer | None = None
    _others: dict[str, ItemItemScorer] = field(default_factory=dict)
    _parts: dict[tuple[str, int], dict[str, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        dataset: SequenceDataset,
        vectors: np.ndarray,
        config: AdapterConfig,
        held_out: int = 0,
    ) -> Validation:
        cases: dict[str, Cases] = {s: make_cases(dataset.valid, dataset, s) for s in SETTINGS}
        # The evaluation protocol's draw; small catalogues get as many negatives as they have.
        n_neg = min(999, min(len(dataset.items_of_domain(d)) for d in range(dataset.n_domains)) - 1)
        cands = {s: draw_candidates(c, dataset, n_neg, 42) for s, c in cases.items()}
        ties = tie_break(dataset.n_items)
        counts = training_counts(dataset)
        return cls(dataset, vectors, config, cases, cands, ties, held_out, counts)

    @classmethod
    def held_out_from(
        cls, dataset: SequenceDataset, vectors: np.ndarray, config: AdapterConfig
    ) -> Validation:
        """The validation `tune` chooses on for a dataset: its valid split plus each training
        user's last training item (`held_out_from_training`). Train on `.dataset`, whose
        training sequences lack those items."""
        fit, held_out = held_out_from_training(dataset)
        return cls.build(fit, vectors, config, held_out)

    @property
    def knn(self) -> ItemKNNScorer:
        """Item-kNN (and its walk) over the training sequences, built on first use."""
        if self._knn is None:
            self._knn = ItemKNNScorer(self.dataset.train, self.dataset.n_items)
        return self._knn

    def other(self, name: str) -> ItemItemScorer:
        if name not in self._others:
            self._others[name] = item_item_part(name, self.dataset.train, self.dataset.n_items)
        return self._others[name]

    def rows(self, setting: str, d: int) -> np.ndarray:
        rows: np.ndarray = np.flatnonzero(self.cases[setting].domains == d)
        return rows

    def histories(self, setting: str, rows: np.ndarray) -> list[np.ndarray]:
        return [self.cases[setting].histories[i] for i in rows]

    def ndcg(self, scores: np.ndarray, cands: np.ndarray, cases: np.ndarray | None = None) -> float:
        """NDCG@10 of the protocol's ranks (of the `cases` rows only, if given)."""
        ranks = rank_of_target(scores + self.ties[cands])
        return metrics_from_ranks(ranks if cases is None else ranks[cases])["ndcg@10"]

    def case_ndcg(self, scores: np.ndarray, cands: np.ndarray) -> np.ndarray:
        """Each case's NDCG@10, ranks as `ndcg` gives them."""
        return _case_ndcg(scores + self.ties[cands])

    def tuned_scores(self, adapter: DomainAdapter, setting: str, rows: np.ndarray) -> np.ndarray:
        """The adapter's scores of the cases `rows`, a block of rows at a time."""
        out = np.empty((len(rows), self.cands[setting].shape[1]), np.float64)
        for start in range(0, len(rows), _ROWS):
            part = rows[start : start + _ROWS]
            histories = histories_of_rows(self.histories(setting, part))
            out[start : start + len(part)] = adapter.scores(
                histories,
                self.cands[setting][part],
                self.vectors,
                self.dataset.domains,
                self.config,
            )
        return out

    def tuned_ndcg(self, adapter: DomainAdapter) -> tuple[dict[str, float], Scored]:
        """The adapter's validation NDCG@10 per setting, and its scores (`Scored`)."""
        ndcg: dict[str, float] = {}
        scored: Scored = {}
        for s in SETTINGS:
            rows = self.rows(s, adapter.domain)
            if not len(rows):
                ndcg[s] = 0.0
                continue
            scored[s] = self.tuned_scores(adapter, s, rows)
            ndcg[s] = self.ndcg(scored[s], self.cands[s][rows])
        return ndcg, scored

    def parts(self, setting: str, d: int) -> dict[str, np.ndarray]:
        """Every collaborative part's raw scores of the setting's cases ending in `d`."""
        key = (setting, d)
        if key not in self._parts:
            rows = self.rows(setting, d)
            histories, cands = self.histories(setting, rows), self.cands[setting][rows]
            parts = {
                "itemknn": self.knn.score(histories, cands, d),
                "walk": self.knn.two_hop(histories, cands),
                **{n: self.other(n).score(histories, cands, d) for n in ITEM_ITEM_PARTS},
            }
            self._parts[key] = {n: np.asarray(parts[n], np.float64) for n in CF_PARTS}
        return self._parts[key]

    def cell(
        self, adapter: DomainAdapter, setting: str, scored: Scored | None = None
    ) -> Cell | None:
        """One setting's validation cases of the adapter's domain, with every score the
        hybrid may blend (the adapter's from `scored`, when given)."""
        rows = self.rows(setting, adapter.domain)
        if not len(rows):
            return None
        cands = self.cands[setting][rows]
        rare = rarely_seen(self.counts[cands])
        tuned = self.tuned_scores(adapter, setting, rows) if scored is None else scored[setting]
        return Cell(
            tuned=tuned,
            bias=adapter.bias[cands].astype(np.float64),
            parts=self.parts(setting, adapter.domain),
            popularity=np.log1p(self.counts[cands].astype(np.float64)),
            cands=cands,
            rare=rare,
            rare_target=rare[:, 0],
            domain_size=len(self.dataset.items_of_domain(adapter.domain)),
        )

    def zero_shot_scores(self, setting: str, d: int) -> np.ndarray | None:
        """Scores of the zero-shot default (the text max-sim + mean blend)."""
        rows = self.rows(setting, d)
        if not len(rows):
            return None
        histories = histories_of_rows(self.histories(setting, rows))
        scores = zero_shot_scores("zero-shot", histories, self.cands[setting][rows], self.vectors)
        return np.asarray(scores, np.float64)

    def served(
        self, adapter: DomainAdapter, cells: Mapping[str, Cell], text: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Per setting, the validation cases of the adapter's domain as the hybrid serves
        them (`HybridModel.blend_rows`, the rule `recommend` and `eval` rank by), from the
        scores already made: each setting's `cells` (the adapter's, the parts') and
        zero-shot `text`, computed on the same rows as `HybridModel.score` would."""
        trained = TrainedAdapter(
            "",
            self.config,
            {adapter.domain: adapter},
            self.dataset.domain_names,
            [],
            self.counts > 0,
            0,
            0.0,
            counts=self.counts,
        )
        others = {n: self.other(n) for n in ITEM_ITEM_PARTS}
        model = HybridModel(trained, self.vectors, self.dataset.domains, self.knn, others=others)
        out: dict[str, np.ndarray] = {}
        for s, cell in cells.items():
            rows = self.rows(s, adapter.domain)
            out[s] = np.empty_like(cell.tuned)
            for start in range(0, len(rows), _ROWS):  # a block at a time, as scored
                block = slice(start, start + _ROWS)
                out[s][block] = model.blend_rows(
                    histories_of_rows(self.histories(s, rows[block])),
                    cell.cands[block],
                    adapter.domain,
                    cell.tuned[block],
                    partial(_part_rows, {name: p[block] for name, p in cell.parts.items()}),
                    partial(_rows, text[s][block]),
                )
        return out


def _rows(scores: np.ndarray, rows: list[int]) -> np.ndarray:
    out: np.ndarray = scores[rows]
    return out


def _part_rows(parts: Mapping[str, np.ndarray], name: str, rows: list[int]) -> np.ndarray:
    return _rows(parts[name], rows)


def _best_cold_weight(
    adapter: DomainAdapter, setting: str, zero_shot: np.ndarray, valid: Validation
) -> float:
    """The zero-shot weight of a cold user's hybrid, chosen on the validation users made
    cold: the adapter without its learned input vectors (none for unseen items), and no
    CF (a cold history has no co-occurrences). The first best, so 0 unless text helps."""
    cold = replace(adapter, inputs=None)
    rows = valid.rows(setting, adapter.domain)
    cands = valid.cands[setting][rows]
    z_tuned = standardise(valid.tuned_scores(cold, setting, rows))
    z_text, tied = standardise(zero_shot), valid.ties[cands]
    weight, _ = best_weight(HYBRID_WEIGHTS, lambda w: _case_ndcg(blend(z_tuned, z_text, w) + tied))
    return weight


def _case_ndcg(broken: np.ndarray) -> np.ndarray:
    """Each case's NDCG@10 of scores already tie-broken (the tie-breaks added)."""
    return ndcg_per_case(rank_of_target(broken), 10)


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
    error = paired_error(gains)
    if gains.mean() < error:
        return (
            f"{scored}, a lead within noise on {len(gains)} validation cases (one standard "
            f"error: {100 * error:.2f} points); more history is needed to show it helps"
        )
    return None


def _best_rare_weight(
    cells: dict[str, Cell], adapter: DomainAdapter, valid: Validation
) -> float | None:
    """The collaborative weight for rarely seen candidates, or None to keep the setting's.

    The learned model knows little about an item seen once or twice, and its bias (which
    starts at log(1 + popularity)) ranks it low, while one co-occurrence is strong
    evidence for item-kNN. So the rule is a constraint: on the validation targets that are
    rarely seen (pooled over the settings: each alone is a few dozen cases), the hybrid
    must score at least item-kNN's NDCG@10; among the weights that do, the best NDCG@10 on
    all validation targets wins. If none does, or there is no such target, none is set.
    """
    if not any(cell.rare_target.any() for cell in cells.values()):
        return None
    rare_cases = np.concatenate([cell.rare_target for cell in cells.values()])
    # Per setting: its blend's standardised scores, and its candidates' tie-breaks.
    kept = {s: (cell.standardised(), valid.ties[cell.cands]) for s, cell in cells.items()}

    def pooled(rare_weight: float | None) -> np.ndarray:
        """Per-case NDCG@10 of every validation case, the settings one after another."""
        return np.concatenate(
            [
                _case_ndcg(
                    z.hybrid(
                        adapter.cf_weights[s],
                        adapter.hybrid_weight[s],
                        adapter.bias_shrink[s],
                        adapter.popularity_weight[s],
                        rare_weight,
                    )
                    + tied
                )
                for s, (z, tied) in kept.items()
            ]
        )

    knn_cases = np.concatenate(
        [_case_ndcg(cell.parts["itemknn"] + kept[s][1]) for s, cell in cells.items()]
    )
    knn_rare = knn_cases[rare_cases].mean()
    best: tuple[float, float | None] | None = None
    for rare_weight in (None, *HYBRID_WEIGHTS[:-1]):
        gains = pooled(rare_weight)
        if gains[rare_cases].mean() < knn_rare:
            continue
        overall = float(gains.mean())
        if best is None or overall > best[0]:
            best = (overall, rare_weight)
    return None if best is None else best[1]
