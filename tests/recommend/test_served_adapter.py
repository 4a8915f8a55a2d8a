"""A device's adapter keeps the item representations of the last candidate arrays it
scored (`recommend.tuned.served`): the same numbers as computing them anew, for any
candidates and vectors."""

from __future__ import annotations

import numpy as np

from localrec.recommend.tuned import served
from localrec.scoring.adapter import AdapterConfig, TrainedAdapter
from localrec.scoring.history import History
from tests.fakes import random_domain_adapter


def adapter(rng: np.random.Generator, items: int = 50, dim: int = 8, d: int = 4) -> TrainedAdapter:
    part = random_domain_adapter(rng, items, dim, d)
    return TrainedAdapter(
        "m",
        AdapterConfig(),
        {0: part},
        ("a",),
        [str(i) for i in range(items)],
        np.ones(items, bool),
        0,
        0.0,
    )


def test_kept_representations_are_the_ones_computed_anew() -> None:
    rng = np.random.default_rng(3)
    plain = adapter(rng)
    kept = served(plain)
    assert kept.domains[0].proj is plain.domains[0].proj  # shared, not copied
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    other = vectors.copy()
    other[7] += 1.0
    asks = [
        (vectors, np.arange(50)[None, :]),
        (vectors, np.arange(50)[None, :]),  # kept
        (vectors, np.arange(10, 30)[None, :]),  # other candidates
        (vectors, np.array([[7, 7, 3], [1, 2, 3]])),  # a batch, a repeat
        (other, np.array([[7, 7, 3], [1, 2, 3]])),  # other vectors, same candidates
        (vectors, np.arange(50)[None, :]),
        (other, np.arange(50)[None, :]),
    ]
    histories = [History.of_rows([1, 4]), History.of_rows([9])]
    for vecs, items in asks:
        np.testing.assert_array_equal(
            kept.domains[0].candidate_reps(vecs, items),
            plain.domains[0].candidate_reps(vecs, items),
        )
        domains = np.zeros(50, dtype=np.int64)
        np.testing.assert_array_equal(
            kept.scores(histories[: len(items)], items, 0, vecs, domains),
            plain.scores(histories[: len(items)], items, 0, vecs, domains),
        )
