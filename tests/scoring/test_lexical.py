"""The lexical score over titles: TF-IDF rows worked out by hand on a tiny catalogue."""

from __future__ import annotations

import math

import numpy as np
import pytest

from localrec.scoring.history import FREE_TEXT, History
from localrec.scoring.lexical import LexicalIndex, lexical_scores, tokens

TITLES = ["Red tea", "green TEA, tea", "red pot", "a"]
# n = 4 titles; df: red 2, tea 2, green 1, pot 1; idf = ln((1 + n) / (1 + df)) + 1.
IDF_COMMON = math.log(5 / 3) + 1
IDF_RARE = math.log(5 / 2) + 1
TWICE = 1 + math.log(2)  # sublinear tf of "tea" in title 1


def unit(*weights: float) -> list[float]:
    norm = math.sqrt(sum(w * w for w in weights))
    return [w / norm for w in weights]


def test_tokens_are_lowercased_words_of_two_or_more_characters() -> None:
    assert tokens("Green TEA, tea & a 2-pack") == ["green", "tea", "tea", "pack"]


def test_rows_are_sublinear_tf_idf_of_unit_length() -> None:
    index = LexicalIndex.build(TITLES)
    assert index.vocabulary == {"red": 0, "tea": 1, "green": 2, "pot": 3}
    np.testing.assert_allclose(index.idf, [IDF_COMMON, IDF_COMMON, IDF_RARE, IDF_RARE])
    dense = index.rows.toarray()
    np.testing.assert_allclose(dense[0], [*unit(IDF_COMMON, IDF_COMMON), 0, 0], rtol=1e-6)
    green, tea = unit(IDF_RARE, TWICE * IDF_COMMON)
    np.testing.assert_allclose(dense[1], [0, tea, green, 0], rtol=1e-6)
    red, pot = unit(IDF_COMMON, IDF_RARE)
    np.testing.assert_allclose(dense[2], [red, 0, 0, pot], rtol=1e-6)
    np.testing.assert_array_equal(dense[3], 0)  # "a" has no term


def test_scores_are_cosines_with_the_histories_mean_row() -> None:
    index = LexicalIndex.build(TITLES)
    dense = index.rows.toarray().astype(np.float64)
    histories = [History.of_rows([0]), History.of_rows([0, 1]), History.of_rows([])]
    candidates = np.array([[1, 2, 3], [2, 3, 0], [0, 1, 2]])
    scores = lexical_scores(histories, candidates, index)
    # One item: its row is unit length, so the score is the plain dot product.
    half = math.sqrt(0.5)
    green_tea = unit(IDF_RARE, TWICE * IDF_COMMON)[1]
    red_pot = unit(IDF_COMMON, IDF_RARE)[0]
    np.testing.assert_allclose(scores[0], [half * green_tea, half * red_pot, 0.0], rtol=1e-6)
    mean = (dense[0] + dense[1]) / 2
    expected = [dense[c] @ mean / np.linalg.norm(mean) for c in (2, 3, 0)]
    np.testing.assert_allclose(scores[1], expected, rtol=1e-6)
    np.testing.assert_array_equal(scores[2], 0)  # no history, no score


def test_strengths_weight_the_mean_and_free_text_counts_with_its_own_row() -> None:
    index = LexicalIndex.build(TITLES)
    dense = index.rows.toarray().astype(np.float64)
    history = History(np.array([0, FREE_TEXT]), np.array([1.0, 0.5]))
    free = index.vectorise(["a green thing"])  # only "green" is a catalogue term
    np.testing.assert_allclose(free.toarray(), [[0, 0, 1, 0]])
    scores = lexical_scores([history], np.array([[1, 2]]), index, [free])
    profile = (dense[0] + 0.5 * free.toarray()[0]) / 1.5
    expected = [dense[c] @ profile / np.linalg.norm(profile) for c in (1, 2)]
    np.testing.assert_allclose(scores[0], expected, rtol=1e-6)
    # Without the free text's row it does not count, but its strength still divides.
    alone = lexical_scores([history], np.array([[1, 2]]), index)
    np.testing.assert_allclose(alone[0], [dense[c] @ dense[0] for c in (1, 2)], rtol=1e-6)


def test_matches_scikit_learns_tfidf_baseline() -> None:
    pytest.importorskip("sklearn")
    from localrec.scoring.itemknn import TfidfScorer

    titles = ["Red tea", "green TEA, tea", "red pot", "a", "tea pot 2-pack", "Pot, red"]
    histories = [np.array([0, 4]), np.array([1]), np.array([5, 2, 0])]
    candidates = np.array([[1, 2, 3, 5], [0, 2, 4, 5], [1, 3, 4, 0]])
    ours = lexical_scores(
        [History.of_rows(h) for h in histories], candidates, LexicalIndex.build(titles)
    )
    theirs = TfidfScorer(titles).score(histories, candidates, 0)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
