"""The Ray engine's counting stage without Ray: its map (`chunk_counts`) over chunks of
users, its reduce (`block_aggregates`) per block of source items and the driver's
`assemble` give the local build's aggregates, the hybrid's order-blind parts included
(co-occurrence counts exactly, RP3beta to 1e-12 and equal in float32), for any cut of the
users into chunks and of the items into blocks. The Ray pipeline itself:
test_ray_engine.py."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from localrec.errors import EngineError
from localrec.packs.aggregates import PrivateAggregates, local_aggregates
from localrec.packs.ray_counting import PARTS, assemble, block_aggregates, chunk_counts
from localrec.packs.sources import chunk_row

N_ITEMS = 70


def _sequences(seed: int = 3, users: int = 600) -> list[np.ndarray]:
    """Users of 1-12 events over 70 items, popular ones more often, with repeats."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, N_ITEMS + 1)
    weights /= weights.sum()
    return [
        rng.choice(N_ITEMS, size=int(rng.integers(1, 13)), p=weights).astype(np.int64)
        for _ in range(users)
    ]


def _batch(rows: list[dict[str, object]]) -> dict[str, np.ndarray]:
    return {key: np.asarray([row[key] for row in rows], dtype=object) for key in rows[0]}


def counted_as_on_ray(
    sequences: list[np.ndarray],
    chunks: int,
    block_rows: int,
    min_users: int,
    neighbours: int,
    parts: tuple[str, ...],
) -> PrivateAggregates:
    """What RayEngine.aggregates runs, with Ray's map_batches and groupby done by hand."""
    bounds = np.linspace(0, len(sequences), chunks + 1).astype(int)
    mapped = [
        chunk_counts(_batch([chunk_row(p, sequences[lo:hi])]), N_ITEMS, block_rows, parts)
        for p, (lo, hi) in enumerate(itertools.pairwise(bounds))
    ]
    rows = {key: np.concatenate([m[key] for m in mapped]) for key in mapped[0]}
    reduced = [
        block_aggregates(
            {key: column[rows["block"] == block] for key, column in rows.items()},
            N_ITEMS,
            block_rows,
            min_users,
            neighbours,
            parts,
        )
        for block in np.unique(rows["block"])
    ]
    return assemble(reduced, N_ITEMS, min_users, parts)


def assert_same_weights(got: sp.spmatrix, want: sp.spmatrix) -> None:
    """The same pairs, equal as a pack stores them (float32) and to 1e-12 in float64 (Ray
    adds each pair's per-chunk sums in another order)."""
    got, want = got.tocsr(), want.tocsr()
    got.sort_indices()
    want.sort_indices()
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data.astype(np.float32), want.data.astype(np.float32))
    np.testing.assert_allclose(got.data, want.data, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("chunks", "block_rows", "min_users", "neighbours", "parts"),
    [
        (1, N_ITEMS, 1, 0, PARTS),
        (4, 9, 2, 10, PARTS),
        (7, 16, 3, 5, ("rp3beta",)),
        (3, 1, 2, 100, ("cooccurrence",)),
        (5, 23, 2, 100, ()),
    ],
)
def test_chunks_and_blocks_give_the_local_aggregates(
    chunks: int, block_rows: int, min_users: int, neighbours: int, parts: tuple[str, ...]
) -> None:
    sequences = _sequences()
    want = local_aggregates(sequences, N_ITEMS, min_users, neighbours, parts)
    got = counted_as_on_ray(sequences, chunks, block_rows, min_users, neighbours, parts)
    assert got.sequences == want.sequences == len(sequences)
    np.testing.assert_array_equal(got.users, want.users)
    np.testing.assert_array_equal(got.popularity, want.popularity)
    assert_same_weights(got.similarity, want.similarity)
    assert sorted(got.parts) == sorted(want.parts) == sorted(parts)
    for name in parts:
        assert want.parts[name].nnz > 50
        assert_same_weights(got.parts[name], want.parts[name])
    if "cooccurrence" in parts:  # counts of users: whole numbers, K or more
        assert want.parts["cooccurrence"].data.min() >= min_users


def test_a_part_the_engine_cannot_count_is_an_error() -> None:
    from localrec.packs.ray_engine import RayEngine

    with pytest.raises(EngineError, match="does not count the part"):
        RayEngine(None, 1).aggregates(None, N_ITEMS, 2, 10, ("ease",))
