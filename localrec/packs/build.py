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
    PrivateAggregates,
    local_aggregates,
    private_adapter,
)
from localrec.packs.format import VECTOR_DTYPES, PackItem, write_pack
from localrec.paths import as_path
from localrec.scoring.adapter import aligned
from localrec.scoring.hybrid import used_parts
from localrec.store.db import Store, require_store
from localrec.store.item_vectors import templates
from localrec.tuning.storage import adapter_bytes, adapter_meta, load_adapter

__all__ = ["ENGINES", "PackBuild", "build_pack"]

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
    store: Store, index: dict[str, int], sequences: Sequence[np.ndarray] | None
) -> tuple[list[str], dict[str, int], Sequence[np.ndarray] | None]:
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
    renumbered = None if sequences is None else [position[s] for s in sequences]
    return ids, {i: r for r, i in enumerate(ids)}, renumbered


ENGINES = ("local", "ray")


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
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    events: Path | str | None = None,
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
        engine: "local", or "ray": encode the items that have no vector and count the
            pairs on Ray (`packs.ray_engine`); the adapter is still trained by `tune`.
        address: With "ray": the cluster to run on (else a local one is started).
        workers: With "ray": how many of its CPUs to use (default: all).
        events: With "ray" and `store`: read the users' events from these files
            (Parquet, or a directory of CSV or JSON Lines; `packs.sources`).
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
    if engine not in ENGINES:
        raise InputError(f"--engine {engine!r} is not one of {', '.join(ENGINES)}")
    for option, value in (("--address", address), ("--workers", workers), ("--events", events)):
        if value is not None and engine != "ray":
            raise InputError(f"{option} is an option of --engine ray")
    if events is not None and store is None:
        raise InputError("--events are read into a database's pack: give --db, not DATASET_DIR")
    events = None if events is None else as_path(events, "the event files")
    say = step or (lambda _: None)
    start = time.perf_counter()
    spec, gguf = resolve_model(model)
    build = _Build(Path(out), spec, gguf, min_users, neighbours, dtype, say, start)
    if engine == "ray":
        from localrec.packs.ray_engine import ray_engine
        from localrec.packs.sources import check_events

        if events is not None:
            check_events(events)

        with ray_engine(address, workers) as cluster:
            build.cluster = cluster
            return _build_from(build, dataset_dir, store, events)
    return _build_from(build, dataset_dir, store, None)


@dataclass
class _Build:
    """What a build was asked for, and the Ray engine when it runs on one."""

    out: Path
    spec: Any
    gguf: Path
    min_users: int
    neighbours: int
    dtype: str
    say: Callable[[str], None]
    start: float
    cluster: Any = None


def _build_from(
    build: _Build, dataset_dir: Path | str | None, store: Store | None, events: Path | None
) -> PackBuild:
    if dataset_dir is not None:
        dataset, cache, index = dataset_with_store(Path(dataset_dir))
        with cache:
            return _build(
                build, cache, index, list(dataset.train), source=Path(dataset_dir).name,
                public=dataset_item_ids(dataset, index),
            )  # fmt: skip
    assert store is not None
    index = {row.id: r for r, row in enumerate(store.iter_items())}
    if not index:
        raise InputError(f"{store.path}: the database has no items to pack")
    sequences = None if events is not None else store_sequences(store, index)
    return _build(build, store, index, sequences, source=Path(store.path).name, events=events)


def _aggregates(
    build: _Build,
    ids: list[str],
    sequences: Sequence[np.ndarray] | None,
    events: Path | None,
    parts: tuple[str, ...],
) -> PrivateAggregates:
    n = len(ids)
    if build.cluster is None:
        assert sequences is not None
        build.say(f"counting the pairs of {len(sequences)} users")
        return local_aggregates(sequences, n, build.min_users, build.neighbours, parts)
    from localrec.packs.sources import chunks_from_events, chunks_from_sequences

    cluster = build.cluster
    if events is not None:
        build.say(f"counting the pairs of the users in {events} on Ray ({cluster.workers} CPUs)")
        chunks = chunks_from_events(cluster.ray, events, ids, cluster.workers)
    else:
        assert sequences is not None
        build.say(f"counting the pairs of {len(sequences)} users on Ray ({cluster.workers} CPUs)")
        chunks = chunks_from_sequences(cluster.ray, sequences, cluster.workers)
    aggregates: PrivateAggregates = cluster.aggregates(
        chunks, n, build.min_users, build.neighbours, parts
    )
    return aggregates


def _build(
    build: _Build,
    store: Store,
    index: dict[str, int],
    sequences: Sequence[np.ndarray] | None,
    *,
    source: str,
    public: dict[str, str] | None = None,
    events: Path | None = None,
) -> PackBuild:
    """`public` renames the store's item ids to the ids users know (a dataset's cache
    numbers its items; the pack carries the dataset's own ids)."""
    spec, say = build.spec, build.say
    n = len(index)
    if build.cluster is not None:
        say(f"encoding the items without a {spec.name} vector on Ray")
        done = build.cluster.encode(store, spec, build.gguf, model_sha256(spec, build.gguf))
        say(f"encoded {done.encoded} items ({done.skipped} had a vector) in {done.seconds:.1f} s")
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
    stored = load_adapter(store, spec.name)
    # The hybrid's order-blind parts the adapter weighs are counted with item-kNN's pairs.
    parts = () if stored is None else used_parts(stored)
    counted = _aggregates(build, ids, sequences, events, parts)
    payload, settings, adapter_items = None, None, 0
    if stored is not None:
        adapter = aligned(stored, index, vectors)
        item_domains = adapter.domain_numbers(domains)
        adapter = private_adapter(adapter, counted.users, build.min_users, vectors, item_domains)
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
        "model_sha256": model_sha256(spec, build.gguf),
        "dim": spec.dim,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "min_users": build.min_users,
        "neighbours": build.neighbours,
        "knn": {"recency_decay": counted.recency_decay},
        "templates": templates(store),
    }
    if settings is not None:
        meta["adapter"] = settings
    say(f"writing {build.out}")
    write_pack(
        build.out,
        meta,
        items,
        vectors,
        counted.popularity,
        counted.similarity,
        payload,
        vector_dtype=build.dtype,
        parts=counted.parts,
    )
    return PackBuild(
        build.out,
        n,
        counted.sequences,
        int(counted.similarity.nnz),
        adapter_items,
        time.perf_counter() - build.start,
    )
