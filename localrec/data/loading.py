"""Where interaction data comes from: a dataset directory with its vector cache, or a
database's own events as a leave-last-out dataset."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from localrec.data.dataset import SequenceDataset, load_dataset
from localrec.data.sampling import UserSample, check_sample_size, sample_rows
from localrec.errors import DatasetError
from localrec.models.cache import resolve_model
from localrec.models.registry import ModelSpec
from localrec.paths import home_dir
from localrec.store.db import Store
from localrec.store.ingest import add_items

__all__ = [
    "CachedDataset",
    "aligned_matrix",
    "dataset_item_ids",
    "dataset_store",
    "dataset_with_store",
    "db_as_dataset",
    "load_cached_dataset",
    "store_sequences",
]


def dataset_store(dataset: SequenceDataset) -> Store:
    """The cache database beside a dataset: its items (for vectors), keyed by items.jsonl."""
    digest = hashlib.sha256((dataset.root / "items.jsonl").read_bytes()).hexdigest()[:16]
    path = home_dir() / "datasets" / f"{dataset.root.name}-{digest}.db"
    store = Store(path)
    if store.stats()["items_total"] != dataset.n_items:
        add_items(
            store,
            (
                {
                    "id": str(i),
                    "domain": dataset.domain_names[dataset.domains[i]],
                    "title": dataset.item_text(i),
                }
                for i in range(dataset.n_items)
            ),
            source=str(dataset.root / "items.jsonl"),
        )
    return store


def aligned_matrix(store: Store, model: str, index: dict[str, int], dim: int) -> np.ndarray:
    """Item vectors in dataset order; `index` maps the store's item ids to dataset indices."""
    stored = store.item_matrix(model, None, dim=dim)
    rows = [(index[i], r) for r, i in enumerate(stored.ids) if i in index]
    matrix = np.zeros((len(index), dim), dtype=np.float32)
    if rows:
        targets, sources = zip(*rows, strict=True)
        matrix[list(targets)] = stored.matrix[list(sources)]
    return matrix


@dataclass(frozen=True)
class CachedDataset:
    """A sequence dataset and one model's item vectors from the cache `eval` fills."""

    spec: ModelSpec
    dataset: SequenceDataset
    vectors: np.ndarray  # (n_items, dim), dataset order; zero rows for items not encoded
    ids: list[str]  # the cache's item ids, in dataset order

    @property
    def complete(self) -> bool:
        return bool(self.vectors.any(axis=1).all())


def load_cached_dataset(path: Path, model: str | None = None) -> CachedDataset:
    """The dataset at `path` with the vectors a `localrec eval` of it cached (nothing is
    encoded here: items without a vector get a zero row, see `complete`)."""
    spec, _ = resolve_model(model)
    dataset, store, index = dataset_with_store(Path(path))
    with store:
        vectors = aligned_matrix(store, spec.name, index, spec.dim)
    return CachedDataset(spec, dataset, vectors, sorted(index, key=index.__getitem__))


def store_sequences(
    store: Store, index: dict[str, int], users: set[str] | None = None
) -> list[np.ndarray]:
    """Every user's events in the database (or only those of `users`) as rows of `index`
    (item id -> row), oldest first; events of items `index` lacks are left out."""
    return [
        np.asarray([index[i] for i, _, _ in events if i in index], dtype=np.int64)
        for events in store.user_sequences(users).values()
    ]


def db_as_dataset(
    store: Store,
    domain: str | None = None,
    hold_out: int = 1,
    sample_users: int | None = None,
    seed: int = 0,
) -> tuple[SequenceDataset, dict[str, int]]:
    """A database's own events as a leave-last-out dataset: each user's last event is held out.

    With `hold_out=2` the held-out case ends at the second-to-last event and neither of the
    last two is trained on: the split `tune` chooses its epoch on, so that `eval` on the
    last events afterwards is not judged on data the adapter was fitted or chosen on.
    Item ids in the returned dataset are the rows of the database's items, in order; the
    database serves as its own vector store (the cache ids are the item ids).

    With `sample_users`, only a seeded uniform sample of that many users is read (their
    whole sequences): their training sequences and held-out cases are the dataset's.
    """
    if sample_users is not None:
        check_sample_size(sample_users)
    rows = list(store.iter_items())
    if not rows:
        raise DatasetError(f"{store.path}: the database has no items")
    chosen, sample = None, None
    if sample_users is not None:
        ids = store.user_ids()
        picked = sample_rows(len(ids), sample_users, seed, str(store.path))
        chosen = {ids[n] for n in picked.tolist()}
        sample = UserSample(sample_users, len(ids), seed)
    index = {r.id: i for i, r in enumerate(rows)}
    names = tuple(dict.fromkeys(r.domain for r in rows))
    domain_of = {n: i for i, n in enumerate(names)}
    train, test = [], []
    for rows_of_user in store_sequences(store, index, chosen):
        seq = rows_of_user.astype(np.int32)
        case = seq[: len(seq) - hold_out + 1]
        if len(case) >= 2 and (domain is None or rows[case[-1]].domain == domain):
            test.append(case)
            train.append(seq[: len(seq) - hold_out])
        else:
            # A user too short to hold out from still never trains on their last event.
            train.append(seq[:-1] if hold_out > 1 and len(seq) >= 2 else seq)
    if not test:
        raise DatasetError(
            f"{store.path}: no user has two or more events"
            + (f" ending in {domain!r}" if domain else "")
            + "; leave-last-out needs a history and a held-out event"
        )
    dataset = SequenceDataset(
        root=Path(store.path),
        item_ids=np.arange(len(rows), dtype=np.int64),
        domains=np.asarray([domain_of[r.domain] for r in rows], dtype=np.int8),
        domain_names=names,
        titles=[r.title for r in rows],
        attributes=["" for _ in rows],
        train=train,
        valid=[],
        test=test,
        train_files=("events",),
        sample=sample,
    )
    return dataset, index


def dataset_item_ids(dataset: SequenceDataset, index: dict[str, int]) -> dict[str, str]:
    """The cache's item ids (dense numbers) -> the dataset's own item ids, as users know them."""
    return {cache_id: str(int(dataset.item_ids[i])) for cache_id, i in index.items()}


def dataset_with_store(
    path: Path, sample_users: int | None = None, seed: int = 0
) -> tuple[SequenceDataset, Store, dict[str, int]]:
    """A sequence dataset (its training users sampled, with `sample_users`: see
    `load_dataset`), its vector cache and the cache's id-to-index map."""
    dataset = load_dataset(path, sample_users, seed)
    return dataset, dataset_store(dataset), {str(i): i for i in range(dataset.n_items)}
