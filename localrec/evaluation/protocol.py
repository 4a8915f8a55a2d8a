"""The evaluation run: every scorer on every case of a split, in every setting."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from localrec.data.dataset import SequenceDataset
from localrec.data.protocol import (
    SETTINGS,
    Scorer,
    Setting,
    coverage_at_k,
    draw_candidates,
    full_candidates,
    hub_share,
    make_cases,
    metrics_from_ranks,
    rank_of_target,
    slice_masks,
    tie_break,
    top_k_items,
    training_counts,
)
from localrec.errors import DatasetError
from localrec.evaluation.results import CaseRanks, EvalReport, MetricRow, SliceRow

__all__ = ["evaluate"]

# Cells of the (cases x candidates) score matrix handed to a scorer at once: 256 cases
# of full ranking over ~30k items, or a whole domain's cases with 999 negatives.
CHUNK_CELLS = 1 << 23
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


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
                            np.concatenate(tops).ravel(), len(dataset.items_of_domain(d))
                        ),
                        hub_10=hub_share(
                            np.concatenate(tops),
                            None if candidates is None else candidates[domain_cases],
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
