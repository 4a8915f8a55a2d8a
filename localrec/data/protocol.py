"""The evaluation protocol: leave-last-out cases, sampled or full candidates, rank metrics.

Each valid/test line is one case: its last item is the target, the items before it the
history. In the `mixed` setting a method sees the whole history; in `cross` only the
history items from the other domain(s), which measures transfer. The target is ranked
against `n_negatives` items of its own domain drawn without replacement (or, with
`full=True`, against every item of its domain). Candidate draws are seeded and consume
their generator in file order, so two runs (and other implementations of the same recipe)
rank against exactly the same negatives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from localrec.data.dataset import SequenceDataset
from localrec.errors import DatasetError

if TYPE_CHECKING:
    from localrec.evaluation.comparison import PairedDifference

__all__ = [
    "METRICS",
    "SETTINGS",
    "SLICES",
    "CaseRanks",
    "Cases",
    "EvalReport",
    "MetricRow",
    "Scorer",
    "SliceRow",
    "coverage_at_k",
    "draw_candidates",
    "evaluate",
    "full_candidates",
    "make_cases",
    "metrics_from_ranks",
    "ndcg_per_case",
    "rank_of_target",
    "slice_masks",
    "tie_break",
    "training_counts",
]

Setting = Literal["mixed", "cross"]
SETTINGS: tuple[Setting, ...] = ("mixed", "cross")
METRICS = ("ndcg@5", "ndcg@10", "hr@1", "hr@5", "hr@10", "mrr", "coverage@10")
# Scores of order 1 differ from their tie-broken value in the 9th decimal, far below any
# difference a scorer means; yet every tie gets a fixed, target-blind order.
TIE_BREAK_SCALE = 1e-9
# Cells of the (cases x candidates) score matrix handed to a scorer at once: 256 cases
# of full ranking over ~30k items, or a whole domain's cases with 999 negatives.
CHUNK_CELLS = 1 << 23

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
ItemArray = npt.NDArray[np.integer[Any]]


class Scorer(Protocol):
    """Anything that scores candidate items for users given only their histories."""

    @property
    def name(self) -> str: ...

    def score(
        self, histories: Sequence[ItemArray], candidates: IntArray, target_domain: int
    ) -> npt.NDArray[np.floating[Any]]:
        """Scores with the shape of `candidates` (one row per history); higher ranks first.

        `histories[i]` holds item indices oldest first (possibly empty); `candidates[i]`
        the item indices to score for that user, all in `target_domain`.
        """
        ...


@dataclass(frozen=True, eq=False)
class Cases:
    """Evaluation cases in file order: what the method sees and what it must rank first."""

    setting: Setting
    histories: list[npt.NDArray[np.int32]]
    targets: IntArray
    domains: IntArray

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def history_lengths(self) -> IntArray:
        return np.fromiter((len(h) for h in self.histories), np.int64, len(self.histories))


def make_cases(
    sequences: Sequence[npt.NDArray[np.integer[Any]]], dataset: SequenceDataset, setting: Setting
) -> Cases:
    """One case per sequence: its last item is the target; `cross` keeps other-domain history."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; use one of {', '.join(SETTINGS)}")
    targets = np.empty(len(sequences), dtype=np.int64)
    histories: list[npt.NDArray[np.int32]] = []
    for n, seq in enumerate(sequences):
        if len(seq) == 0:
            raise DatasetError(f"{dataset.root}: sequence {n + 1} is empty; it has no target")
        targets[n] = seq[-1]
        histories.append(np.asarray(seq[:-1], dtype=np.int32))
    domains = dataset.domains[targets].astype(np.int64)
    if setting == "cross":
        histories = [
            h[dataset.domains[h] != d] for h, d in zip(histories, domains.tolist(), strict=True)
        ]
    return Cases(setting=setting, histories=histories, targets=targets, domains=domains)


def draw_candidates(
    cases: Cases, dataset: SequenceDataset, n_negatives: int = 999, seed: int = 42
) -> IntArray:
    """(n_cases, 1 + n_negatives) item indices; column 0 is the target.

    Negatives come from the target's domain, without replacement, never the target. A
    fresh `default_rng(seed)` serves only this draw, case by case in file order, so the
    negatives of a case do not depend on which method or setting is evaluated.
    """
    if n_negatives < 1:
        raise ValueError(f"n_negatives must be at least 1, got {n_negatives}")
    for d in np.unique(cases.domains).tolist():
        size = len(dataset.items_of_domain(d))
        if size < n_negatives + 1:
            raise DatasetError(
                f"{dataset.root}: domain {dataset.domain_names[d]!r} has {size} items, too few "
                f"for {n_negatives} negatives plus the target; ask for at most {size - 1} "
                "negatives or rank all items (full ranking)"
            )
    rng = np.random.default_rng(seed)
    out = np.empty((len(cases), 1 + n_negatives), dtype=np.int64)
    out[:, 0] = cases.targets
    positions = dataset.domain_position(cases.targets).tolist()
    for n, (d, pos) in enumerate(zip(cases.domains.tolist(), positions, strict=True)):
        items = dataset.items_of_domain(d)
        # Draw among the domain's other items, then skip over the target's slot.
        draw = rng.choice(len(items) - 1, n_negatives, replace=False)
        draw[draw >= pos] += 1
        out[n, 1:] = items[draw]
    return out


def full_candidates(targets: IntArray, dataset: SequenceDataset, domain: int) -> IntArray:
    """Every item of `domain` for each target, target first (it swaps places with item 0)."""
    items = dataset.items_of_domain(domain)
    out = np.tile(items, (len(targets), 1))
    rows = np.arange(len(targets))
    out[rows, dataset.domain_position(targets)] = items[0]
    out[:, 0] = targets
    return out


def tie_break(n_items: int) -> FloatArray:
    """A fixed tiny value per item, added to every score so ties are broken target-blind."""
    return np.random.default_rng(0).random(n_items) * TIE_BREAK_SCALE


def rank_of_target(scores: npt.NDArray[np.floating[Any]]) -> IntArray:
    """1 + how many candidates score strictly higher than column 0 (the target)."""
    beaten_by = np.count_nonzero(scores[:, 1:] > scores[:, :1], axis=1)
    return np.asarray(beaten_by, dtype=np.int64) + 1


def ndcg_per_case(ranks: npt.ArrayLike, cutoff: int) -> FloatArray:
    """Each case's NDCG@cutoff with one relevant item: 1 / log2(1 + rank) within the
    cutoff, else 0."""
    r = np.asarray(ranks, dtype=np.float64)
    gains: FloatArray = np.where(r <= cutoff, 1.0 / np.log2(r + 1.0), 0.0)
    return gains


def metrics_from_ranks(ranks: npt.ArrayLike) -> dict[str, float]:
    """NDCG@5/10, HR@1/5/10 and MRR as fractions, averaged over cases (one relevant item)."""
    r = np.asarray(ranks, dtype=np.float64)
    if r.size == 0:
        return {m: 0.0 for m in METRICS if m != "coverage@10"}
    return {
        "ndcg@5": float(ndcg_per_case(r, 5).mean()),
        "ndcg@10": float(ndcg_per_case(r, 10).mean()),
        "hr@1": float((r <= 1).mean()),
        "hr@5": float((r <= 5).mean()),
        "hr@10": float((r <= 10).mean()),
        "mrr": float((1.0 / r).mean()),
    }


def top_k_items(scores: FloatArray, candidates: IntArray, k: int) -> IntArray:
    """The candidates in each row's top k (unordered), flattened."""
    if candidates.shape[1] <= k:
        return candidates.ravel()
    cols = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(candidates, cols, axis=1).ravel()


def coverage_at_k(top_items: IntArray, domain_size: int) -> float:
    """Distinct items recommended in any top k, over the size of the catalogue."""
    return len(np.unique(top_items)) / domain_size if domain_size else 0.0


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


# A target seen at most this often in training is "rare": item-kNN knows little about it.
RARE_TARGET_MAX = 3
SLICES = {
    "rare-target": f"the target occurs at most {RARE_TARGET_MAX} times in the training files",
    "cold-history": "no item of the history (as the method sees it) occurs in training",
}


@dataclass(frozen=True, eq=False)
class EvalReport:
    split: str
    n_negatives: int | None  # None for full ranking
    seed: int
    rows: list[MetricRow]
    cases: dict[tuple[str, str], CaseRanks] = field(default_factory=dict)
    slices: list[SliceRow] = field(default_factory=list)
    # Names of the domain indices in `cases`.
    domain_names: tuple[str, ...] = ()
    # Paired differences from one method, when the run was asked for them.
    comparisons: list[PairedDifference] = field(default_factory=list)

    def row(self, method: str, setting: str, domain: str) -> MetricRow:
        for r in self.rows:
            if (r.method, r.setting, r.domain) == (method, setting, domain):
                return r
        raise KeyError((method, setting, domain))

    def slice_dicts(self) -> list[dict[str, Any]]:
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


def evaluate(
    dataset: SequenceDataset,
    split: Literal["valid", "test"] = "test",
    settings: Sequence[Setting] = SETTINGS,
    scorers: Sequence[Scorer] = (),
    n_negatives: int = 999,
    seed: int = 42,
    full: bool = False,
    progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Score every case of `split` with every scorer in every setting.

    `progress(n)` is called after each chunk of n cases is scored; the total is
    len(settings) * len(scorers) * number of cases.
    """
    if split not in ("valid", "test"):
        raise ValueError(f"unknown split {split!r}; use 'valid' or 'test'")
    names = [s.name for s in scorers]
    if len(set(names)) != len(names):
        raise ValueError(f"scorer names must be unique, got {names}")
    sequences = dataset.valid if split == "valid" else dataset.test
    if not sequences:
        raise DatasetError(f"{dataset.root}: the {split} split is empty or missing")
    ties = tie_break(dataset.n_items)
    rows: list[MetricRow] = []
    slices: list[SliceRow] = []
    per_case: dict[tuple[str, str], CaseRanks] = {}
    train_counts = training_counts(dataset)
    for setting in settings:
        cases = make_cases(sequences, dataset, setting)
        masks = slice_masks(cases, train_counts)
        candidates = None if full else draw_candidates(cases, dataset, n_negatives, seed)
        lengths = cases.history_lengths
        for scorer in scorers:
            ranks = np.zeros(len(cases), dtype=np.int64)
            n_cands = np.zeros(len(cases), dtype=np.int64)
            for d in np.unique(cases.domains).tolist():
                domain_cases = np.flatnonzero(cases.domains == d)
                tops: list[IntArray] = []
                for chunk in _chunks(domain_cases, dataset, d, candidates):
                    cands = (
                        full_candidates(cases.targets[chunk], dataset, d)
                        if candidates is None
                        else candidates[chunk]
                    )
                    scores = _checked_scores(scorer, [cases.histories[i] for i in chunk], cands, d)
                    scores += ties[cands]
                    ranks[chunk] = rank_of_target(scores)
                    n_cands[chunk] = cands.shape[1]
                    tops.append(top_k_items(scores, cands, 10))
                    if progress is not None:
                        progress(len(chunk))
                m = metrics_from_ranks(ranks[domain_cases])
                rows.append(
                    MetricRow(
                        method=scorer.name,
                        setting=setting,
                        domain=dataset.domain_names[d],
                        ndcg_5=m["ndcg@5"],
                        ndcg_10=m["ndcg@10"],
                        hr_1=m["hr@1"],
                        hr_5=m["hr@5"],
                        hr_10=m["hr@10"],
                        mrr=m["mrr"],
                        coverage_10=coverage_at_k(
                            np.concatenate(tops), len(dataset.items_of_domain(d))
                        ),
                        n=len(domain_cases),
                    )
                )
                for name, mask in masks.items():
                    chosen = mask & (cases.domains == d)
                    if chosen.any():
                        slices.append(
                            SliceRow(
                                name,
                                scorer.name,
                                setting,
                                dataset.domain_names[d],
                                metrics_from_ranks(ranks[chosen])["ndcg@10"],
                                int(chosen.sum()),
                            )
                        )
            per_case[(scorer.name, setting)] = CaseRanks(
                ranks=ranks,
                targets=cases.targets,
                domains=cases.domains,
                history_lengths=lengths,
                n_candidates=n_cands,
            )
    return EvalReport(
        split=split,
        n_negatives=None if full else n_negatives,
        seed=seed,
        rows=rows,
        cases=per_case,
        slices=slices,
        domain_names=tuple(dataset.domain_names),
    )


def training_counts(dataset: SequenceDataset) -> IntArray:
    """How often each item occurs in the training sequences."""
    if not dataset.train:
        return np.zeros(dataset.n_items, dtype=np.int64)
    joined = np.concatenate([np.asarray(s, dtype=np.int64) for s in dataset.train])
    return np.bincount(joined, minlength=dataset.n_items)


def slice_masks(cases: Cases, train_counts: IntArray) -> dict[str, npt.NDArray[np.bool_]]:
    """The cases of each slice in SLICES."""
    return {
        "rare-target": train_counts[cases.targets] <= RARE_TARGET_MAX,
        "cold-history": np.array(
            [not (train_counts[np.asarray(h, dtype=np.int64)] > 0).any() for h in cases.histories],
            dtype=bool,
        ),
    }


def _chunks(
    case_idx: IntArray, dataset: SequenceDataset, domain: int, candidates: IntArray | None
) -> Iterator[IntArray]:
    width = len(dataset.items_of_domain(domain)) if candidates is None else candidates.shape[1]
    size = max(1, CHUNK_CELLS // width)
    for start in range(0, len(case_idx), size):
        yield case_idx[start : start + size]


def _checked_scores(
    scorer: Scorer, histories: list[npt.NDArray[np.int32]], candidates: IntArray, domain: int
) -> FloatArray:
    # float64: a float32 score would swallow the 1e-9 tie-break.
    scores = np.array(scorer.score(histories, candidates, domain), dtype=np.float64)
    if scores.shape != candidates.shape:
        raise ValueError(
            f"scorer {scorer.name!r} returned shape {scores.shape} for candidates of shape "
            f"{candidates.shape}; it must return one score per candidate"
        )
    if not np.isfinite(scores).all():
        # NaN compares false with everything, which would rank the target first.
        raise ValueError(f"scorer {scorer.name!r} returned NaN or infinite scores")
    return scores
