"""The evaluation protocol's parts: leave-last-out cases, sampled or full candidates, ranks
and metrics. `localrec.evaluation.protocol` runs it; `tune` chooses on it.

Each valid/test line is one case: its last item is the target, the items before it the
history. In the `mixed` setting a method sees the whole history; in `cross` only the
history items from the other domain(s), which measures transfer. The target is ranked
against `n_negatives` items of its own domain drawn without replacement (or, with
`full=True`, against every item of its domain). Candidate draws are seeded and consume
their generator in file order, so two runs (and other implementations of the same recipe)
rank against exactly the same negatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from localrec.data.dataset import SequenceDataset
from localrec.errors import DatasetError

__all__ = [
    "METRICS",
    "SETTINGS",
    "SLICES",
    "Cases",
    "Scorer",
    "coverage_at_k",
    "draw_candidates",
    "full_candidates",
    "held_out_from_training",
    "hub_share",
    "make_cases",
    "metrics_from_ranks",
    "ndcg_per_case",
    "rank_of_target",
    "slice_masks",
    "tie_break",
    "top_k_items",
    "training_counts",
]

Setting = Literal["mixed", "cross"]
SETTINGS: tuple[Setting, ...] = ("mixed", "cross")
METRICS = ("ndcg@5", "ndcg@10", "hr@1", "hr@5", "hr@10", "mrr", "coverage@10", "hub@10")
# Metrics of the lists as a whole, not averaged over each case's rank.
LIST_METRICS = ("coverage@10", "hub@10")
# Scores of order 1 differ from their tie-broken value in the 9th decimal, far below any
# difference a scorer means; yet every tie gets a fixed, target-blind order.
TIE_BREAK_SCALE = 1e-9

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
        return {m: 0.0 for m in METRICS if m not in LIST_METRICS}
    return {
        "ndcg@5": float(ndcg_per_case(r, 5).mean()),
        "ndcg@10": float(ndcg_per_case(r, 10).mean()),
        "hr@1": float((r <= 1).mean()),
        "hr@5": float((r <= 5).mean()),
        "hr@10": float((r <= 10).mean()),
        "mrr": float((1.0 / r).mean()),
    }


def top_k_items(scores: FloatArray, candidates: IntArray, k: int) -> IntArray:
    """The candidates in each row's top k (unordered): one row per case."""
    if candidates.shape[1] <= k:
        return candidates
    cols = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(candidates, cols, axis=1)


def coverage_at_k(top_items: IntArray, domain_size: int) -> float:
    """Distinct items recommended in any top k, over the size of the catalogue."""
    return len(np.unique(top_items)) / domain_size if domain_size else 0.0


def hub_share(tops: IntArray, candidates: IntArray | None) -> float:
    """The share of cases whose top k (`tops`, one row per case) holds the domain's most
    recommended item (the one in most of the top k lists), among the cases that could
    get it: those whose `candidates` row holds it (None: every case ranks every item).
    One item first for every user gives 1.0; a hub-free method a few per cent."""
    if not tops.size:
        return 0.0
    items, counts = np.unique(tops, return_counts=True)
    hub = items[np.argmax(counts)]
    has_hub = (tops == hub).any(axis=1)
    if candidates is None:
        return float(has_hub.mean())
    could = (candidates == hub).any(axis=1)
    return float(has_hub[could].mean())


# A target seen at most this often in training is "rare": item-kNN knows little about it.
RARE_TARGET_MAX = 3
SLICES = {
    "rare-target": f"the target occurs at most {RARE_TARGET_MAX} times in the training files",
    "cold-history": "no item of the history (as the method sees it) occurs in training",
}


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


def held_out_from_training(dataset: SequenceDataset) -> tuple[SequenceDataset, int]:
    """The dataset as `tune` chooses on it, and how many validation cases it gained.

    Each training user's last training item is held out: their sequence becomes a
    validation case (first, before the dataset's own validation cases), and their training
    sequence loses that item, so nothing fitted on the returned training sequences has
    seen it. That gives thousands of cases per domain instead of a valid split's hundreds.

    The users are those whose training sequence spans more than one domain, the kind of
    user the held-out splits of a cross-domain dataset hold (Food-Kitchen's valid and test
    users have both domains); with no such user (one domain), every sequence of two or
    more items.
    """
    spans = [len(s) >= 2 and len(np.unique(dataset.domains[s])) > 1 for s in dataset.train]
    if not any(spans):
        spans = [len(s) >= 2 for s in dataset.train]
    cut = [s for s, chosen in zip(dataset.train, spans, strict=True) if chosen]
    train = [s[:-1] if chosen else s for s, chosen in zip(dataset.train, spans, strict=True)]
    return replace(dataset, train=train, valid=[*cut, *dataset.valid]), len(cut)
