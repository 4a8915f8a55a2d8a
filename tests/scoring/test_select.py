"""Scores and lists against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest

from localrec.embedding.llama_encoder import normalise_rows
from localrec.errors import InputError
from localrec.scoring.select import (
    cosine_scores,
    select,
    threshold_rows,
    top_k_rows,
    validate_k_threshold,
)


def reference_order(scores: np.ndarray) -> np.ndarray:
    """A full stable sort: best first, ties in row order."""
    return np.argsort(-scores.astype(np.float64), kind="stable")


def random_case(seed: int, n: int = 2000, dim: int = 48) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    matrix = normalise_rows(rng.standard_normal((n, dim)).astype(np.float32))
    user = normalise_rows(rng.standard_normal((1, dim)).astype(np.float32))[0]
    return matrix, user


@pytest.mark.parametrize("seed", range(5))
def test_scores_equal_plain_numpy_cosine(seed: int) -> None:
    matrix, user = random_case(seed)
    expected = np.array(
        [float(np.dot(row, user) / (np.linalg.norm(row) * np.linalg.norm(user))) for row in matrix]
    )
    np.testing.assert_allclose(cosine_scores(matrix, user), expected, atol=1e-6)


@pytest.mark.parametrize("k", [1, 10, 2000])
@pytest.mark.parametrize("seed", range(3))
def test_top_k_equals_a_full_sort(seed: int, k: int) -> None:
    matrix, user = random_case(seed)
    scores = cosine_scores(matrix, user)
    assert top_k_rows(scores, k).tolist() == reference_order(scores)[:k].tolist()


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_ties_break_by_row_order(k: int) -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.9, 0.1, 0.5, 0.9, 0.5] * 10, dtype=np.float32)
    assert top_k_rows(scores, k).tolist() == reference_order(scores)[:k].tolist()


def test_top_k_on_the_real_catalogue(encoder: object) -> None:
    from localrec.embedding.llama_encoder import LlamaEncoder

    assert isinstance(encoder, LlamaEncoder)
    titles = [f"kitchen item {n % 37} with handle" for n in range(300)]  # many exact ties
    matrix = encoder.encode(titles)
    user = encoder.encode(["a pan with a handle"], query=True)[0]
    scores = cosine_scores(matrix, user)
    for k in (1, 10, 300):
        assert top_k_rows(scores, k).tolist() == reference_order(scores)[:k].tolist()


def test_threshold_list_is_every_item_above_theta() -> None:
    matrix, user = random_case(7)
    scores = cosine_scores(matrix, user)
    rows = threshold_rows(scores, 0.2)
    assert set(rows.tolist()) == set(np.flatnonzero(scores >= 0.2).tolist())
    assert (np.diff(scores[rows]) <= 0).all()


def test_select_combines_k_and_threshold_and_respects_allowed() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5], dtype=np.float32)
    allowed = np.array([1, 2, 3, 4])
    assert select(scores, 2, None, allowed).tolist() == [1, 2]
    assert select(scores, None, 0.65, allowed).tolist() == [1, 2]
    assert select(scores, 1, 0.65, allowed).tolist() == [1]
    assert select(scores, 10, 0.95).tolist() == []


def test_batch_of_users_equals_one_by_one() -> None:
    matrix, _ = random_case(3)
    users = normalise_rows(np.random.default_rng(9).standard_normal((50, 48)).astype(np.float32))
    block = cosine_scores(matrix, users)
    for i in (0, 17, 49):
        np.testing.assert_allclose(block[i], cosine_scores(matrix, users[i]), atol=1e-6)


@pytest.mark.parametrize(
    ("k", "theta", "message"),
    [
        (0, None, "k must be a positive"),
        (-3, None, "k must be a positive"),
        (None, 1.5, "between -1 and 1"),
        (None, -2.0, "between -1 and 1"),
    ],
)
def test_bad_k_and_threshold(k: int | None, theta: float | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_k_threshold(k, theta)


def test_dimension_mismatch_is_named() -> None:
    with pytest.raises(InputError, match="item vectors have 8 dimensions, the user vector has 4"):
        cosine_scores(np.zeros((3, 8), np.float32), np.zeros(4, np.float32))
