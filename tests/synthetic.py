"""A synthetic two-domain catalogue with a known mapping, and a database tuned on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from localrec.data.dataset import SequenceDataset
from localrec.embedding.llama_encoder import normalise_rows
from localrec.scoring.adapter import AdapterConfig, TrainedAdapter
from localrec.tuning.storage import store_adapter
from localrec.tuning.train import train_adapter


def synthetic(seed: int = 0) -> tuple[SequenceDataset, np.ndarray]:
    """Two domains of 60 items; after source item k users always take target item k."""
    rng = np.random.default_rng(seed)
    n = 60
    vectors = normalise_rows(rng.standard_normal((2 * n, 16)).astype(np.float32))
    domains = np.array([0] * n + [1] * n, dtype=np.int8)

    def user() -> np.ndarray:
        k = int(rng.integers(0, n))
        return np.array([int(rng.integers(0, n)), k, n + k], dtype=np.int32)

    train = [user() for _ in range(3000)]
    dataset = SequenceDataset(
        root=Path("synthetic"),
        item_ids=np.arange(2 * n, dtype=np.int64),
        domains=domains,
        domain_names=("a", "b"),
        titles=[f"item {i}" for i in range(2 * n)],
        attributes=[""] * (2 * n),
        train=train,
        valid=[user() for _ in range(200)],
        test=[user() for _ in range(200)],
    )
    return dataset, vectors


def purchases(sequences: list[list[int]]) -> list[dict[str, object]]:
    """Events of one user per sequence, in order: "u" for the first, "u1", "u2"... after."""
    return [
        {"user": f"u{n}" if n else "u", "item": str(item), "action": "purchase", "time": t}
        for n, items in enumerate(sequences)
        for t, item in enumerate(items)
    ]


def tuned_database(
    tmp_path: Path,
    events: list[dict[str, object]],
    rare_weight: float | None = None,
    two_hop_weight: float = 0.0,
) -> tuple[Path, TrainedAdapter, np.ndarray, SequenceDataset]:
    """A database of the synthetic catalogue with `events`, and an adapter trained and stored
    in it (with every even item counted as rarely seen, when `rare_weight` is given, and a
    collaborative part of item-kNN plus its two-step walk weighted `two_hop_weight` in both
    settings)."""
    from localrec.store.db import Store
    from localrec.store.ingest import add_events, add_items
    from localrec.store.item_vectors import encode_items
    from tests.fakes import FakeEncoder

    dataset, _ = synthetic()
    ids = [str(i) for i in range(120)]
    db = tmp_path / "tuned.db"
    with Store(db) as store:
        add_items(
            store,
            [
                {"id": i, "domain": dataset.domain_names[dataset.domains[int(i)]], "title": f"t{i}"}
                for i in ids
            ],
        )
        add_events(store, events)
        encode_items(store, FakeEncoder())
        matrix = store.item_matrix("fake", None)
        vectors = matrix.matrix[[matrix.index()[i] for i in ids]]
        config = AdapterConfig(
            dim=16, epochs=3, negatives=50, batch_size=128, learning_rate=0.02, min_pairs=10
        )
        adapter = train_adapter(dataset, vectors, "fake", ids, config)
        if rare_weight is not None:
            adapter.domains[1].rare_weight = rare_weight
            adapter.counts = np.where(np.arange(120) % 2 == 0, 2, 50)
        # Item-kNN (and the walk), without popularity or a lighter bias, whatever the
        # synthetic validation chose: the tests built on this ask for exactly that hybrid.
        parts = {"itemknn": 1.0, "walk": two_hop_weight} if two_hop_weight else {"itemknn": 1.0}
        model = adapter.domains[1]
        model.cf_weights = {"mixed": dict(parts), "cross": dict(parts)}
        model.popularity_weight, model.bias_shrink = {}, {}
        store_adapter(store, adapter)
    return db, adapter, vectors, dataset
