"""The adapter's user vector, built straight from the events (`scoring.history_means`):
the same as the textbook weighted means, and as training's weight matrices."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from localrec.scoring.adapter import AdapterConfig, DomainAdapter, normalised
from localrec.scoring.history import FREE_TEXT, History
from localrec.scoring.history_means import history_weights
from tests.fakes import random_domain_adapter

ITEMS, DIM, D = 40, 6, 3
CONFIG = AdapterConfig(half_life=2.0, max_prefix=5)


def reference_user(
    part: DomainAdapter, history: History, vectors: np.ndarray, domains: np.ndarray
) -> np.ndarray:
    """u = W_src m_src + W_same m_same + sum_j w_j e_j, one event at a time."""
    rows = history.rows[-CONFIG.max_prefix :]
    count = int((rows == FREE_TEXT).sum())  # the last `count` free-text vectors are kept
    free = history.free_vectors
    picked = iter([] if free is None or not count else free[len(free) - count :])
    weight = 0.5 ** ((len(rows) - 1 - np.arange(len(rows))) / CONFIG.half_life)
    same = np.array([r != FREE_TEXT and domains[r] == part.domain for r in rows], dtype=bool)
    vecs = np.array([next(picked) if r == FREE_TEXT else vectors[r] for r in rows], np.float64)
    user = np.zeros(D)
    for group, w_matrix in ((~same, part.w_src), (same, part.w_same)):
        if group.any():
            w = weight[group] / weight[group].sum()
            user += w_matrix.astype(np.float64) @ (w @ vecs[group])
            if part.inputs is not None:
                known = rows[group] != FREE_TEXT
                user += w[known] @ part.inputs.astype(np.float64)[rows[group][known]]
    return user


def histories(rng: np.random.Generator) -> list[History]:
    free = rng.normal(size=(2, DIM)).astype(np.float32)
    return [
        History.of_rows([3, 25, 7, 30, 3]),  # both domains, a repeat
        History.of_rows([21, 22, 23, 24, 25, 26, 27, 28]),  # longer than max_prefix
        History.of_rows([1, 2]),  # no item of the target domain
        History.of_rows([]),
        History(np.array([5, FREE_TEXT, 22, FREE_TEXT]), np.ones(4), free),
    ]


@pytest.mark.parametrize("inputs", [True, False])
def test_user_vectors_are_the_textbook_weighted_means(inputs: bool) -> None:
    rng = np.random.default_rng(7)
    part = random_domain_adapter(rng, ITEMS, DIM, D, domain=1, stored=np.float16, inputs=inputs)
    vectors = rng.normal(size=(ITEMS, DIM)).astype(np.float32)
    domains = np.repeat([0, 1], ITEMS // 2)
    batch = histories(rng)
    got = part.user_vectors(batch, vectors, domains, CONFIG)
    for history, row in zip(batch, got, strict=True):
        np.testing.assert_allclose(row, reference_user(part, history, vectors, domains), atol=1e-5)
    for history, row in zip(batch, got, strict=True):  # one at a time, as a device asks
        alone = part.user_vectors([history], vectors, domains, CONFIG)[0]
        np.testing.assert_allclose(alone, row, rtol=1e-6, atol=1e-7)


def test_weights_are_trainings_normalised_matrices() -> None:
    rng = np.random.default_rng(1)
    batch = [h for h in histories(rng) if FREE_TEXT not in h.rows]
    domains = np.repeat([0, 1], ITEMS // 2)
    weights = history_weights(batch, domains, 1, ITEMS, CONFIG.half_life, CONFIG.max_prefix)
    rows = np.concatenate([np.full(min(len(h), 5), r) for r, h in enumerate(batch)])
    cols = np.concatenate([h.rows[-5:] for h in batch])
    ages = np.concatenate([np.arange(min(len(h), 5))[::-1] for h in batch])
    recency = 0.5 ** (ages / CONFIG.half_life)
    same = domains[cols] == 1
    shape = (len(batch), ITEMS)
    np.testing.assert_array_equal(weights.rows, rows)
    np.testing.assert_array_equal(weights.cols, cols)
    np.testing.assert_array_equal(weights.same, same)
    for group in (~same, same):
        ours = sp.csr_matrix((weights.weights[group], (rows[group], cols[group])), shape=shape)
        theirs = normalised(rows, cols, recency, group, shape)
        np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=1e-6)


def test_a_batch_is_summed_in_slices_as_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import localrec.scoring.history_means as means

    rng = np.random.default_rng(9)
    part = random_domain_adapter(rng, ITEMS, DIM, D, domain=1, stored=np.float16, inputs=True)
    vectors = rng.normal(size=(ITEMS, DIM)).astype(np.float32)
    domains = np.repeat([0, 1], ITEMS // 2)
    batch = histories(rng) * 7
    whole = part.user_vectors(batch, vectors, domains, CONFIG)
    monkeypatch.setattr(means, "_EVENTS_AT_ONCE", 3)
    np.testing.assert_allclose(part.user_vectors(batch, vectors, domains, CONFIG), whole, rtol=1e-6)
