"""A device's adapter keeps the item representations of the last candidates it scored
(`recommend.tuned.served`): the same numbers as computing them anew, for any candidates."""

from __future__ import annotations

import numpy as np

from localrec.recommend.tuned import served
from localrec.scoring.adapter import AdapterConfig, DomainAdapter, TrainedAdapter


def adapter(rng: np.random.Generator, items: int = 50, dim: int = 8, d: int = 4) -> TrainedAdapter:
    part = DomainAdapter(
        domain=0,
        w_src=rng.normal(size=(d, dim)).astype(np.float32),
        w_same=rng.normal(size=(d, dim)).astype(np.float32),
        proj=rng.normal(size=(d, dim)).astype(np.float32),
        offsets=rng.normal(size=(items, d)).astype(np.float32),
        bias=rng.normal(size=items).astype(np.float32),
    )
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
        (vectors, np.arange(50)),
        (vectors, np.arange(50)),  # kept
        (vectors, np.arange(10, 30)),  # other candidates
        (vectors, np.array([7, 7, 3])),
        (other, np.array([7, 7, 3])),  # other vectors, same candidates
        (vectors, np.arange(50)),
    ]
    for vecs, items in asks:
        np.testing.assert_array_equal(
            kept.domains[0].item_reps(vecs, items), plain.domains[0].item_reps(vecs, items)
        )
