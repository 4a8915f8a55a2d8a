"""A lexical score over item titles: TF-IDF rows and the cosine of a history's mean row.

numpy and scipy.sparse only, so serving needs no scikit-learn (the `[eval]` extra's
`TfidfScorer` baseline uses it). The weighting is scikit-learn's `TfidfVectorizer` with
`sublinear_tf=True`: tokens are runs of two or more word characters, lowercased; a term's
weight is (1 + ln tf) * (ln((1 + n) / (1 + df)) + 1), and each row has unit length. A
user's lexical profile is the strength-weighted mean of the history items' rows; an item's
score is the cosine between it and its row (0 for an empty profile or an empty title).

Not served: `benchmarks/zero_shot_blend.py` measures it blended with max-sim against the
zero-shot default (issue 17), and the blend did not hold in every cell (docs/results.md,
Zero-shot), so the default is unchanged. Built for the 36,298 Food-Kitchen titles in
0.4-0.6 s, 2.8 MB.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from localrec.scoring.history import History

__all__ = ["LexicalIndex", "lexical_scores", "tokens"]

TOKEN = re.compile(r"(?u)\b\w\w+\b")


def tokens(text: str) -> list[str]:
    """The terms of a text, in order: lowercased runs of two or more word characters."""
    return TOKEN.findall(text.lower())


@dataclass(frozen=True)
class LexicalIndex:
    """TF-IDF rows of a catalogue's titles (`rows[i]` is item i's, unit length or empty)."""

    vocabulary: dict[str, int]
    idf: np.ndarray  # (n_terms,) float64
    rows: sp.csr_matrix  # (n_items, n_terms) float32

    @classmethod
    def build(cls, titles: Sequence[str]) -> LexicalIndex:
        """The index of `titles` (the catalogue in row order)."""
        vocabulary: dict[str, int] = {}
        tf = _term_counts(titles, vocabulary, grow=True)
        df = np.bincount(tf.indices, minlength=len(vocabulary)).astype(np.float64)
        idf = np.log((1.0 + len(titles)) / (1.0 + df)) + 1.0
        return cls(vocabulary, idf, _weighted(tf, idf))

    def vectorise(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF rows of texts outside the catalogue (terms it lacks are left out)."""
        return _weighted(_term_counts(texts, self.vocabulary, grow=False), self.idf)

    @property
    def nbytes(self) -> int:
        """Memory of the rows and weights (the vocabulary's strings not counted)."""
        return int(self.rows.data.nbytes + self.rows.indices.nbytes + self.rows.indptr.nbytes)


def _term_counts(texts: Sequence[str], vocabulary: dict[str, int], *, grow: bool) -> sp.csr_matrix:
    """How often each term of `vocabulary` occurs in each text (texts x terms); with `grow`,
    a term it lacks is added to it, else left out."""
    indptr = [0]
    indices: list[int] = []
    counts: list[int] = []
    for text in texts:
        row: dict[int, int] = {}
        for term in tokens(text):
            column = vocabulary.setdefault(term, len(vocabulary)) if grow else vocabulary.get(term)
            if column is not None:
                row[column] = row.get(column, 0) + 1
        indices.extend(row)
        counts.extend(row.values())
        indptr.append(len(indices))
    return sp.csr_matrix(
        (np.asarray(counts, dtype=np.float64), np.asarray(indices, dtype=np.int64), indptr),
        shape=(len(texts), len(vocabulary)),
    )


def _weighted(tf: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    out = sp.csr_matrix(tf, dtype=np.float64, copy=True)
    out.data = (1.0 + np.log(out.data)) * idf[out.indices]
    norms = np.sqrt(np.asarray(out.multiply(out).sum(axis=1)).ravel())
    out = sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ out)
    out.sort_indices()
    return out.astype(np.float32)


def lexical_scores(
    histories: Sequence[History],
    candidates: np.ndarray,
    index: LexicalIndex,
    free_rows: Sequence[sp.csr_matrix | None] | None = None,
) -> np.ndarray:
    """Each history's lexical cosine with each candidate of its row of `candidates`.

    The profile is the strength-weighted mean of the history items' rows; free-text events
    count with their `free_rows[i]` (the history's free texts vectorised, in order), or not
    at all without them.
    """
    out = np.zeros(candidates.shape, dtype=np.float32)
    for i, history in enumerate(histories):
        if not len(history):
            continue
        profile = _profile(history, index, None if free_rows is None else free_rows[i])
        norm = float(np.sqrt(profile.multiply(profile).sum()))
        if norm == 0.0:
            continue
        cands = index.rows[np.asarray(candidates[i])]
        out[i] = np.asarray((cands @ profile.T).todense()).ravel() / norm
    return out


def _profile(history: History, index: LexicalIndex, free: sp.csr_matrix | None) -> sp.csr_matrix:
    known = history.rows >= 0
    weights = np.asarray(history.strengths, dtype=np.float64)
    total = float(weights.sum())
    if total <= 0:
        return sp.csr_matrix((1, index.rows.shape[1]), dtype=np.float64)
    profile = sp.csr_matrix(weights[known][None, :]) @ index.rows[history.rows[known]]
    if free is not None and free.shape[0]:
        profile = profile + sp.csr_matrix(weights[~known][None, :]) @ free
    out: sp.csr_matrix = sp.csr_matrix(profile, dtype=np.float64) / total
    return out
