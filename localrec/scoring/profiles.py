"""User representations: a user's history turned into scores over candidate items.

- history-text: the history written as text and embedded as a query (the seed's way);
- item-mean:    the mean of the history items' vectors, weighted by action and recency;
- max-sim:      each candidate's best recency-weighted similarity to one history item,
                which keeps several interests apart instead of averaging them away;
- zero-shot:    the default: (max-sim + 0.25 item-mean) / 1.25, still a cosine in
                [-1, 1], so thresholds keep their meaning. On the Food-Kitchen validation
                split (NDCG@10 %, food / kitchen, mixed) it scores 6.44 / 6.09 against
                6.30 / 6.19 for max-sim, 5.01 / 4.23 for item-mean and 2.16 / 2.17 for
                history-text (README, "Why these defaults"); blends with history-text
                scored lower when chosen. It needs no model at query time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from localrec.errors import InputError
from localrec.scoring.history import History
from localrec.scoring.select import cosine_scores, take_rows
from localrec.weighting import ages, recency

__all__ = [
    "MEAN_HALF_LIFE",
    "USER_VECTORS",
    "mean_weights",
    "profile_scores",
    "zero_shot_scores",
]

USER_VECTORS = ("zero-shot", "history-text", "item-mean", "max-sim")
NEEDS_TEXT = frozenset({"history-text"})
HYBRID_MEAN_WEIGHT = 0.25
MAX_SIM_RECENT = 20
# Half-lives in events, chosen on the Food-Kitchen validation split: the mean wants the
# last one or two items (half-life 1: 5.1/4.5 % NDCG@10, 10: 2.1/2.9 %, none: 1.2/2.4 %),
# the max a longer memory (half-life 10: 6.3/6.0 %, no decay: 5.2/5.1 %).
MEAN_HALF_LIFE = 2.0
MAX_SIM_HALF_LIFE = 10.0


def mean_weights(strengths: np.ndarray, half_life: float = MEAN_HALF_LIFE) -> np.ndarray:
    """The item-mean's weights: action strength times recency, summing to 1 (oldest first)."""
    n = len(strengths)
    weights = (np.asarray(strengths, np.float64) * recency(ages(n), half_life)).astype(np.float32)
    total = float(weights.sum())
    out: np.ndarray = weights / total if total > 0 else weights
    return out


def hybrid_blend(max_sim: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """A convex mix of two cosines, so still a cosine-scaled score."""
    blend: np.ndarray = (max_sim + HYBRID_MEAN_WEIGHT * mean) / (1 + HYBRID_MEAN_WEIGHT)
    return blend


def mean_vector(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted mean of the history's vectors, unit length (zero for no history)."""
    mean: np.ndarray = weights @ vectors
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def profile_scores(
    method: str,
    vectors: np.ndarray,
    weights: np.ndarray,
    matrix: np.ndarray,
    text_vector: np.ndarray | None = None,
) -> np.ndarray:
    """s(u, p) for every row of `matrix` under one user representation: the one zero-shot
    scoring of `recommend`, `score`, `threshold suggest`, `eval` and a cold user's hybrid.

    `vectors` are the history's item vectors (oldest first), `weights` the item-mean's
    (`mean_weights`), `text_vector` the embedded history text (history-text only). Every
    representation gives a cosine-scaled score in [-1, 1].
    """
    if method not in USER_VECTORS:
        raise InputError(f"unknown user vector {method!r}; choose one of {', '.join(USER_VECTORS)}")
    if method == "max-sim":
        return max_similarity(vectors, matrix)
    if method == "zero-shot":
        mean = cosine_scores(matrix, mean_vector(vectors, weights))
        return hybrid_blend(max_similarity(vectors, matrix), mean)
    if method == "item-mean":
        return cosine_scores(matrix, mean_vector(vectors, weights))
    if text_vector is None:
        raise InputError(f"user vector {method!r} needs the history text's vector")
    return cosine_scores(matrix, text_vector)


def zero_shot_scores(
    method: str,
    histories: Sequence[History],
    candidates: np.ndarray,
    catalogue: np.ndarray,
    *,
    half_life: float = MEAN_HALF_LIFE,
    text_vectors: np.ndarray | None = None,
) -> np.ndarray:
    """`profile_scores` of each history over its row of `candidates` (catalogue rows)."""
    out = np.zeros(candidates.shape, dtype=np.float32)
    for i, history in enumerate(histories):
        if not len(history) and method != "history-text":
            continue
        text = None if text_vectors is None else text_vectors[i]
        if method == "history-text" and (text is None or not text.any()):
            continue
        out[i] = profile_scores(
            method,
            history.vectors(catalogue),
            mean_weights(history.strengths, half_life),
            take_rows(catalogue, candidates[i]),
            text,
        )
    return out


def max_similarity(history: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Each row's best similarity to one of the recent history vectors, times its recency."""
    recent = history[-MAX_SIM_RECENT:]
    weights = recency(ages(len(recent)), MAX_SIM_HALF_LIFE).astype(np.float32)
    similarities = cosine_scores(matrix, recent) * weights[:, None]
    best: np.ndarray = similarities.max(axis=0)
    return best
