"""`localrec pack build`: a pack from a dataset directory or a database, after encode/tune.

Runs where the interaction data lawfully is (the vendor's side). What it writes carries
the catalogue and aggregates over at least K users (`packs.aggregates`), never a person's
events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from localrec.data.loading import (
    aligned_matrix,
    dataset_item_ids,
    dataset_with_store,
    store_sequences,
)
from localrec.errors import InputError, NotEncoded
from localrec.models.cache import model_sha256, resolve_model
from localrec.packs.aggregates import (
    DEFAULT_MIN_USERS,
    DEFAULT_NEIGHBOURS,
    item_users,
    pair_users,
    private_adapter,
    private_popularity,
    private_similarity,
)
from localrec.packs.format import VECTOR_DTYPES, PackItem, write_pack
from localrec.paths import as_path
from localrec.scoring.adapter import aligned
from localrec.scoring.hybrid import used_parts
from localrec.scoring.item_models import item_item_part
from localrec.scoring.itemknn import ItemKNNScorer, cooccurrence_counts, item_counts
from localrec.store.db import Store, require_store
from localrec.store.item_vectors import templates
from localrec.tuning.storage import adapter_bytes, adapter_meta, load_adapter

__all__ = ["PackBuild", "build_pack"]

Sequences = list[np.ndarray]


@dataclass(frozen=True)
class PackBuild:
    """What `build_pack` wrote.

    Attributes:
        path: The pack file.
        items: Items in its catalogue.
        users: Users whose events the aggregates were computed from.
        pairs: Item pairs kept (made by at least K users).
        adapter_items: Items whose learned rows it keeps.
        seconds: Build time.
    """

    path: Path
    items: int
    users: int
    pairs: int
    adapter_items: int
    seconds: float


def _grouped_by_domain(
    store: Store, index: dict[str, int], sequences: Sequence[np.ndarray]
) -> tuple[list[str], dict[str, int], Sequence[np.ndarray]]:
    """The items in pack order: each domain's together (so a device reads a domain's
    vectors as one slice), else in their order; `index` and `sequences` renumbered."""
    ids = sorted(index, key=index.__getitem__)
    rows = store.get_items(ids)
    first: dict[str, int] = {}
    for item_id in ids:
        first.setdefault(rows[item_id].domain, len(first))
    order = sorted(range(len(ids)), key=lambda r: first[rows[ids[r]].domain])
    if order == list(range(len(ids))):
        return ids, index, sequences
    position = np.empty(len(ids), dtype=np.int64)
    position[np.asarray(order)] = np.arange(len(ids))
    ids = [ids[r] for r in order]
    return ids, {i: r for r, i in enumerate(ids)}, [position[s] for s in sequences]


def build_pack(
    out: Path | str,
    *,
    dataset_dir: Path | str | None = None,
    store: Store | None = None,
    model: str | None = None,
    min_users: int = DEFAULT_MIN_USERS,
    neighbours: int = DEFAULT_NEIGHBOURS,
    full_precision: bool = False,
    vector_dtype: str | None = None,
    step: Callable[[str], None] | None = None,
) -> PackBuild:
    """Build a pack of one model from a dataset's training files (after `tune DATASET_DIR`)
    or a database's events (after `encode` and `tune`): `localrec pack build`.

    Args:
        out: The pack file to write (replaced only when the build succeeds).
        dataset_dir: A dataset directory to build from (or give `store`).
        store: A database to build from (or give `dataset_dir`).
        model: The embedding model (default: the default model).
        min_users: K: an item pair (a before b), or an item's popularity, is kept only
            when at least K distinct users made it.
        neighbours: N: the N heaviest item-kNN neighbours kept per item; 0 keeps all.
        full_precision: Keep float32 vectors and float64 weights (default: int8 vectors).
        vector_dtype: "int8" or "float32" for the vectors, when `full_precision` is not
            given.
        step: Called with a line saying each step (for progress output).

    Raises:
        InputError: Bad settings, or both or neither of `dataset_dir` and `store`.
    """
    if vector_dtype is not None and vector_dtype not in VECTOR_DTYPES:
        raise InputError(f"vector type {vector_dtype!r} is not one of {', '.join(VECTOR_DTYPES)}")
    dtype = "float32" if full_precision else vector_dtype or "int8"
    if (dataset_dir is None) == (store is None):
        raise InputError("give a dataset directory or a database to build the pack from")
    out = as_path(out, "the pack to write")
    if store is not None:
        require_store(store)
    else:
        dataset_dir = as_path(dataset_dir, "the dataset directory")
    if not isinstance(min_users, int) or min_users < 1:
        raise InputError(f"--min-users must be 1 or more, got {min_users!r}")
    if not isinstance(neighbours, int) or neighbours < 0:
        raise InputError(f"--neighbours must be 0 (all) or more, got {neighbours!r}")
    say = step or (lambda _: None)
    start = time.perf_counter()
    spec, gguf = resolve_model(model)
    if dataset_dir is not None:
        dataset, cache, index = dataset_with_store(Path(dataset_dir))
        with cache:
            return _build(
                Path(out), cache, index, list(dataset.train), spec, gguf, min_users,
                neighbours, dtype, say, start, source=Path(dataset_dir).name,
                public=dataset_item_ids(dataset, index),
            )  # fmt: skip
    assert store is not None
    index = {row.id: r for r, row in enumerate(store.iter_items())}
    if not index:
        raise InputError(f"{store.path}: the database has no items to pack")
    return _build(
        Path(out), store, index, store_sequences(store, index), spec, gguf, min_users,
        neighbours, dtype, say, start, source=Path(store.path).name,
    )  # fmt: skip


def _build(
    out: Path,
    store: Store,
    index: dict[str, int],
    sequences: Sequence[np.ndarray],
    spec: Any,
    gguf: Path,
    min_users: int,
    neighbours: int,
    dtype: str,
    say: Callable[[str], None],
    start: float,
    *,
    source: str,
    public: dict[str, str] | None = None,
) -> PackBuild:
    """`public` renames the store's item ids to the ids users know (a dataset's cache
    numbers its items; the pack carries the dataset's own ids)."""
    n = len(index)
    ids, index, sequences = _grouped_by_domain(store, index, sequences)
    vectors = aligned_matrix(store, spec.name, index, spec.dim)
    missing = int((~vectors.any(axis=1)).sum())
    if missing:
        raise NotEncoded(
            f"{store.path}: {missing} of {n} items have no {spec.name} vector; run "
            "`localrec encode` (or `localrec tune DATASET_DIR`) before `pack build`"
        )
    rows = store.get_items(ids)
    domains = [rows[i].domain for i in ids]
    say(f"counting the pairs of {len(sequences)} users")
    users_per_item = item_users(sequences, n)
    knn = ItemKNNScorer(sequences, n)
    similarity = private_similarity(knn.similarity, pair_users(sequences, n), min_users, neighbours)
    popularity = private_popularity(item_counts(sequences, n), users_per_item, min_users)
    stored = load_adapter(store, spec.name)
    parts = {}
    if stored is not None and used_parts(stored):
        both = cooccurrence_counts(sequences, n)  # the users who had both items
        parts = {
            name: private_similarity(
                item_item_part(name, sequences, n).similarity, both, min_users, neighbours
            )
            for name in used_parts(stored)
        }
    payload, settings, adapter_items = None, None, 0
    if stored is not None:
        adapter = aligned(stored, index, vectors)
        item_domains = adapter.domain_numbers(domains)
        adapter = private_adapter(adapter, users_per_item, min_users, vectors, item_domains)
        if public is not None:
            adapter = replace(adapter, item_ids=[public[i] for i in adapter.item_ids])
        payload, settings = adapter_bytes(adapter), adapter_meta(adapter)
        adapter_items = int(adapter.seen.sum())
    else:
        say(f"no tuned adapter of {spec.name}: the pack serves zero-shot text and item-kNN")
    items = [
        PackItem(
            r.id if public is None else public[r.id],
            r.domain,
            r.title,
            json.dumps(r.fields, ensure_ascii=False, sort_keys=True),
            json.dumps(r.attributes, ensure_ascii=False, sort_keys=True, default=str),
        )
        for r in (rows[i] for i in ids)
    ]
    meta: dict[str, Any] = {
        "localrec_version": version("localrec"),
        "model": spec.name,
        "model_sha256": model_sha256(spec, gguf),
        "dim": spec.dim,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "min_users": min_users,
        "neighbours": neighbours,
        "knn": {"recency_decay": knn.recency_decay},
        "templates": templates(store),
    }
    if settings is not None:
        meta["adapter"] = settings
    say(f"writing {out}")
    write_pack(
        out,
        meta,
        items,
        vectors,
        popularity,
        similarity,
        payload,
        vector_dtype=dtype,
        parts=parts,
    )
    return PackBuild(
        out, n, len(sequences), int(similarity.nnz), adapter_items, time.perf_counter() - start
    )
