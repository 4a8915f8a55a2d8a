"""How `tune` chooses between scores on validation cases: by paired per-case differences.

Every candidate score ranks the same validation cases, so the honest question "is the
richer one better?" is about the per-case differences. A difference smaller than one
standard error of their mean is noise; the simpler score then wins.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["best_weight", "paired_error", "simplest_within_error"]


def paired_error(differences: np.ndarray) -> float:
    """The standard error of the mean of per-case differences (inf for fewer than 2)."""
    if len(differences) < 2:
        return math.inf
    return float(np.std(differences, ddof=1) / math.sqrt(len(differences)))


def simplest_within_error(case_scores: Sequence[np.ndarray]) -> int:
    """Which of the candidates (per-case NDCG@10 on the same cases, the simplest first) to
    take: the first one that the best is not better than by more than one standard error
    of their paired difference. On a tie the simpler one wins."""
    if not case_scores:
        raise ValueError("no candidate to choose from")
    means = [float(np.mean(s)) for s in case_scores]
    best = int(np.argmax(means))
    for n, scores in enumerate(case_scores[:best]):
        gain = case_scores[best] - scores
        if float(gain.mean()) <= paired_error(gain):
            return n
    return best


def best_weight(
    weights: Sequence[float], case_ndcg: Callable[[float], np.ndarray]
) -> tuple[float, np.ndarray]:
    """The weight with the highest mean `case_ndcg(weight)` (the earliest of equals), and its
    per-case NDCG@10."""
    best: tuple[float, np.ndarray] | None = None
    for weight in weights:
        cases = case_ndcg(weight)
        if best is None or float(cases.mean()) > float(best[1].mean()):
            best = (weight, cases)
    if best is None:
        raise ValueError("no weight to choose from")
    return best
