"""Load a sequence dataset (the Food-Kitchen layout) into a localrec database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from localrec.data.dataset import SequenceDataset
from localrec.store.db import Store
from localrec.store.ingest import add_events, add_items

__all__ = ["dataset_user_ids", "import_dataset"]


def dataset_user_ids(dataset: SequenceDataset) -> Iterator[tuple[str, Any]]:
    """(user id, sequence) for every user: train:N, valid:N and test:N, N from 1."""
    for split, sequences in (
        ("train", dataset.train),
        ("valid", dataset.valid),
        ("test", dataset.test),
    ):
        for n, sequence in enumerate(sequences, start=1):
            yield f"{split}:{n}", sequence


def import_dataset(
    store: Store, dataset: SequenceDataset, *, users: set[str] | None = None
) -> dict[str, int]:
    """Items with their titles, and each sequence as purchases in order (time = position).

    `users` limits the events to those user ids (all items are always imported).
    """
    items = (
        {
            "id": str(int(dataset.item_ids[i])),
            "domain": dataset.domain_names[dataset.domains[i]],
            "title": dataset.titles[i],
            **({"attributes": dataset.attributes[i]} if dataset.attributes[i] else {}),
        }
        for i in range(dataset.n_items)
    )
    n_items = add_items(store, items, source=str(dataset.root / "items.jsonl")).stored

    def events() -> Iterator[dict[str, Any]]:
        for user, sequence in dataset_user_ids(dataset):
            if users is not None and user not in users:
                continue
            for position, item in enumerate(sequence.tolist()):
                yield {"user": user, "item": str(int(dataset.item_ids[item])), "time": position}

    n_events = add_events(store, events(), source=str(dataset.root)).stored
    return {"items": n_items, "events": n_events}
