"""Users' sequences for `pack build --engine ray`, as a Ray dataset of chunks of users.

A chunk is one row: `part` (its number), `flat` (the users' item rows one after another,
int64 bytes) and `lengths` (each user's number of events, int64 bytes). Sequences come from
this process (a dataset directory's training files or a database's events), or from event
files read on the cluster: Parquet (a file or a directory of them, read with pyarrow), or a
directory (or one file) of CSV or JSON Lines. Event files need a user, an item and a time
column; each user's events are ordered by time (events of one user at the same time have
no defined order), and events of items the catalogue lacks are left out, as a database's
are (`data.loading.store_sequences`).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from localrec.errors import InputError

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_SUFFIXES",
    "check_events",
    "chunk_count",
    "chunk_row",
    "chunks_from_events",
    "chunks_from_sequences",
    "event_files",
]

# File name endings of event files, and the Ray Data reader of each.
EVENT_SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".ndjson": "json"}
# The columns of event files: who, what, when.
EVENT_COLUMNS = ("user", "item", "time")
# At most this many users per chunk: a chunk's pairs are counted in one task's memory.
_MAX_CHUNK_USERS = 50_000
# Chunks per worker, so that a slow chunk does not hold the others back.
_CHUNKS_PER_WORKER = 4


def chunk_count(users: int, workers: int) -> int:
    """How many chunks `users` users are cut into for `workers` workers."""
    wanted = max(workers * _CHUNKS_PER_WORKER, math.ceil(users / _MAX_CHUNK_USERS))
    return max(1, min(users, wanted))


def chunk_row(part: int, sequences: Sequence[np.ndarray]) -> dict[str, Any]:
    """One chunk of users as a row of the dataset (the module docstring's columns)."""
    lengths = np.fromiter((len(s) for s in sequences), np.int64, len(sequences))
    flat = (
        np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
        if len(sequences)
        else np.zeros(0, np.int64)
    )
    return {"part": part, "flat": flat.tobytes(), "lengths": lengths.tobytes()}


def chunks_from_sequences(ray: Any, sequences: Sequence[np.ndarray], workers: int) -> Any:
    """Sequences held by this process, cut into chunks of consecutive users."""
    parts = chunk_count(len(sequences), workers)
    bounds = np.linspace(0, len(sequences), parts + 1).astype(np.int64)
    rows = [chunk_row(p, sequences[lo:hi]) for p, (lo, hi) in enumerate(itertools.pairwise(bounds))]
    return ray.data.from_items(rows, override_num_blocks=len(rows))


def event_files(path: Path) -> tuple[str, list[Path]]:
    """Which reader the event files at `path` need, and the files; one clear error if there
    are none or they are of several kinds."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = [
            f for f in sorted(path.rglob("*")) if f.is_file() and not f.name.startswith((".", "_"))
        ]
    else:
        raise InputError(f"{path}: no such file or directory of events")
    kinds = {f.suffix.lower() for f in files}
    known = ", ".join(EVENT_SUFFIXES)
    if not files:
        raise InputError(f"{path}: the directory has no event files ({known})")
    if len(kinds) != 1 or next(iter(kinds)) not in EVENT_SUFFIXES:
        found = ", ".join(sorted(k or "(none)" for k in kinds))
        raise InputError(f"{path}: event files must all end in one of {known}; found {found}")
    return EVENT_SUFFIXES[next(iter(kinds))], files


def check_events(path: Path, columns: tuple[str, ...] = EVENT_COLUMNS) -> None:
    """The first event file has the columns (read before any work; the tasks that read
    the files check every one)."""
    import pyarrow.parquet as pq

    kind, files = event_files(path)
    first = files[0]
    if kind == "parquet":
        try:
            names = list(pq.read_schema(first).names)
        except Exception as exc:
            raise InputError(f"{first}: not a Parquet file ({exc})") from None
    else:
        with first.open(encoding="utf-8", newline="") as fh:
            line = next((row for row in fh if row.strip()), "")
        if kind == "csv":
            names = next(csv.reader([line]), [])
        else:
            try:
                record = json.loads(line) if line else {}
            except json.JSONDecodeError as exc:
                raise InputError(f"{first}: the first event is not JSON ({exc.msg})") from None
            names = list(record) if isinstance(record, dict) else []
    missing = [c for c in columns if c not in names]
    if missing:
        raise InputError(
            f"{first}: the events have no column {missing[0]!r}; they have "
            f"{', '.join(names) or 'none'}"
        )


def chunks_from_events(
    ray: Any,
    path: Path,
    item_ids: Sequence[str],
    workers: int,
    *,
    columns: tuple[str, str, str] = EVENT_COLUMNS,
) -> Any:
    """Event files read on the cluster, as chunks of users (a user's events all in one
    chunk); `item_ids` are the pack's items in row order."""
    import pyarrow as pa

    user, item, time = columns
    kind, _ = event_files(path)
    if kind == "parquet":
        events = ray.data.read_parquet(str(path)).select_columns([user, item, time])
    elif kind == "csv":
        events = ray.data.read_csv(str(path))
    else:
        events = ray.data.read_json(str(path), lines=True)
    parts = max(1, workers * _CHUNKS_PER_WORKER)
    rows = events.map_batches(
        event_rows,
        fn_kwargs={
            "ids": pa.array(list(item_ids), type=pa.string()),
            "columns": columns,
            "parts": parts,
            "source": str(path),
        },
        batch_format="pyarrow",
    )
    return rows.groupby("part", num_partitions=min(parts, workers * 2)).map_groups(
        user_chunk, batch_format="pandas"
    )


def event_rows(batch: Any, ids: Any, columns: tuple[str, str, str], parts: int, source: str) -> Any:
    """Map: events to (part, user, time, row); `part` is a stable hash of the user."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = [c for c in columns if c not in batch.column_names]
    if missing:
        raise InputError(
            f"{source}: the events have no column {missing[0]!r}; they have "
            f"{', '.join(batch.column_names)}"
        )
    user, item, when = (batch.column(c) for c in columns)
    if pa.types.is_timestamp(when.type) or pa.types.is_date(when.type):
        when = pc.cast(pc.cast(when, pa.timestamp("us")), pa.int64())
    elif not (pa.types.is_integer(when.type) or pa.types.is_floating(when.type)):
        raise InputError(
            f"{source}: the time column {columns[2]!r} is {when.type}; give numbers "
            "(e.g. Unix seconds) or timestamps"
        )
    rows = pc.index_in(pc.cast(item, pa.string()), value_set=ids)
    users = pc.cast(user, pa.string())
    known = pc.is_valid(rows)
    if pc.any(pc.is_null(users)).as_py() or pc.any(pc.is_null(when)).as_py():
        raise InputError(f"{source}: an event has no {columns[0]!r} or no {columns[2]!r}")
    users = pc.filter(users, known).to_numpy(zero_copy_only=False).astype(object)
    hashed = pd.util.hash_array(users) % np.uint64(parts)
    return pa.table(
        {
            "part": pa.array(hashed.astype(np.int64)),
            "user": pa.array(users, type=pa.string()),
            "time": pc.cast(pc.filter(when, known), pa.float64()),
            "row": pc.cast(pc.filter(rows, known), pa.int64()),
        }
    )


def user_chunk(group: Any) -> Any:
    """Reduce: one part's events as one chunk, each user's ordered by time."""
    import pandas as pd

    ordered = group.sort_values(["user", "time"], kind="stable")
    lengths = ordered.groupby("user", sort=True).size().to_numpy(np.int64)
    flat = ordered["row"].to_numpy(np.int64)
    part = int(group["part"].iloc[0]) if len(group) else 0
    return pd.DataFrame({"part": [part], "flat": [flat.tobytes()], "lengths": [lengths.tobytes()]})
