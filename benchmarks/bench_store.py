"""Store benchmark: ingest, incremental encoding and the vector-matrix load, in one run.

    LOCALREC_HOME=/tmp/lrhome .venv/bin/python benchmarks/bench_store.py \\
        [--items N] [--skip-encode] [--vectors 100000] [--repeats 7] [--seed 0]

Real-data part (the Food-Kitchen dataset, ../shared/data/amazon-food-kitchen, or
$LOCALREC_FOOD_KITCHEN), each step into a fresh database in a temporary directory:

1. ingest: `import_dataset` (every item plus every sequence as purchase events);
2. first encode of all items with the default model (`open_encoder()`), in items/s;
3. re-encode with nothing changed, and its share of the first encode (goal < 2%);
4. re-encode after 1% of the titles changed (via `add_items`, same id and domain): it must
   encode exactly the changed items (asserted).

`--items N` keeps the first N items (and the events on them) for a quick run;
`--skip-encode` skips steps 2-4 (no model needed). The model must be on disk:
`open_encoder()` says what to run when it is not.

Synthetic part: `--vectors` items with random 384-dim unit vectors written with
`put_vectors` into another fresh database; `Store.item_matrix` is timed cold (its cache
cleared before every run), median of `--repeats`, against a naive row-by-row read (the same
query, one `np.frombuffer` per row, `np.vstack`). Goal: under 150 ms for 100k vectors.

Prints one line per step while it runs, then a table: step, figure, goal, met or not.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# This checkout's localrec and scripts/, however the benchmark is started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localrec.data.dataset import SequenceDataset, load_dataset
from localrec.data.importer import import_dataset
from localrec.embedding.loader import open_encoder
from localrec.store.db import ItemRow, Store
from localrec.store.ingest import add_items
from localrec.store.item_vectors import encode_items
from scripts.food_kitchen import food_kitchen_dir

REPO = Path(__file__).resolve().parent.parent
DATA = food_kitchen_dir(REPO)
REENCODE_GOAL = 0.02
MATRIX_GOAL_S = 0.150
MATRIX_GOAL_N = 100_000
SYNTHETIC_MODEL = "synthetic-384"
SYNTHETIC_DIM = 384
CHANGED_SHARE = 0.01


@dataclass
class Row:
    """One line of the final table."""

    step: str
    figure: str
    goal: str = ""
    met: bool | None = None


def say(text: str) -> None:
    print(text, flush=True)


def limit_items(dataset: SequenceDataset, n: int) -> SequenceDataset:
    """The first `n` items, and every sequence cut to those items (empty ones dropped)."""
    if n >= dataset.n_items:
        return dataset

    def cut(sequences: list[np.ndarray]) -> list[np.ndarray]:
        kept = (s[s < n] for s in sequences)
        return [s for s in kept if len(s)]

    return dataclasses.replace(
        dataset,
        item_ids=dataset.item_ids[:n],
        domains=dataset.domains[:n],
        titles=dataset.titles[:n],
        attributes=dataset.attributes[:n],
        train=cut(dataset.train),
        valid=cut(dataset.valid),
        test=cut(dataset.test),
    )


def change_titles(store: Store, count: int, seed: int) -> list[str]:
    """Give `count` random items a new title (same id and domain); returns their ids."""
    ids = [row.id for row in store.iter_items()]
    chosen = random.Random(seed).sample(ids, count)
    rows = store.get_items(chosen)
    records: list[dict[str, Any]] = [
        {
            **rows[i].attributes,
            "id": rows[i].id,
            "domain": rows[i].domain,
            "title": f"{rows[i].title} (revised {n})",
        }
        for n, i in enumerate(chosen)
    ]
    add_items(store, records, source="<changed titles>")
    return chosen


def bench_real(args: argparse.Namespace, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    start = time.perf_counter()
    dataset = load_dataset(DATA)
    load_s = time.perf_counter() - start
    if args.items is not None:
        dataset = limit_items(dataset, args.items)
    n_items = dataset.n_items
    say(f"dataset: {DATA} ({n_items} items, read in {load_s:.2f} s)")

    store = Store(workdir / "real.db")
    start = time.perf_counter()
    counts = import_dataset(store, dataset)
    ingest_s = time.perf_counter() - start
    say(f"1. ingest: {counts['items']} items + {counts['events']} events in {ingest_s:.2f} s")
    rows.append(
        Row(
            f"ingest {counts['items']} items + {counts['events']} events",
            f"{ingest_s:.2f} s ({(counts['items'] + counts['events']) / ingest_s:,.0f} rows/s)",
        )
    )
    if args.skip_encode:
        store.close()
        return rows

    start = time.perf_counter()
    encoder = open_encoder()
    say(f"model {encoder.name} loaded in {time.perf_counter() - start:.2f} s")

    def progress(done: int, total: int) -> None:
        if done and (done % 4096 < 256 or done == total):
            say(f"   {done}/{total}")

    first = encode_items(store, encoder, chunk_size=256, progress=progress)
    say(
        f"2. first encode: {first.encoded} items in {first.seconds:.1f} s "
        f"({first.items_per_second:.1f} items/s)"
    )
    rows.append(
        Row(
            f"first encode ({encoder.name})",
            f"{first.seconds:.1f} s, {first.encoded} items, {first.items_per_second:.1f} items/s",
        )
    )

    again = encode_items(store, encoder)
    share = again.seconds / first.seconds
    say(
        f"3. re-encode, nothing changed: {again.seconds * 1000:.0f} ms, encoded {again.encoded}, "
        f"skipped {again.skipped} ({share:.2%} of the first encode)"
    )
    rows.append(
        Row(
            "re-encode, nothing changed",
            f"{again.seconds * 1000:.0f} ms = {share:.2%} of first (encoded {again.encoded})",
            f"< {REENCODE_GOAL:.0%}",
            share < REENCODE_GOAL and again.encoded == 0,
        )
    )

    n_changed = max(1, round(n_items * CHANGED_SHARE))
    before = store.vector_hashes(encoder.name)
    start = time.perf_counter()
    changed = change_titles(store, n_changed, args.seed)
    change_s = time.perf_counter() - start
    partial = encode_items(store, encoder)
    after = store.vector_hashes(encoder.name)
    rewritten = {item for item, digest in after.items() if before.get(item) != digest}
    say(
        f"4. changed {len(changed)} titles in {change_s * 1000:.0f} ms; re-encode: "
        f"{partial.seconds:.2f} s, encoded {partial.encoded}, skipped {partial.skipped}"
    )
    assert partial.encoded == len(changed), (
        f"re-encode after {len(changed)} changed titles encoded {partial.encoded}"
    )
    assert rewritten == set(changed), "the re-encode rewrote vectors of unchanged items"
    rows.append(
        Row(
            f"re-encode, {len(changed)} titles changed",
            f"{partial.seconds:.2f} s, encoded {partial.encoded}",
            f"encodes exactly {len(changed)}",
            partial.encoded == len(changed),
        )
    )

    (real,) = time_interleaved([cold_loader(store, encoder.name)], args.repeats)
    say(f"   item_matrix of the {n_items} real vectors: {real} (median, cold)")
    rows.append(Row(f"item_matrix, {n_items} real vectors (cold)", str(real)))
    encoder.close()
    store.close()
    return rows


@dataclass(frozen=True)
class Timing:
    """Median wall-clock and CPU seconds of repeated runs."""

    wall: float
    cpu: float

    def __str__(self) -> str:
        return f"{self.wall * 1000:.1f} ms (cpu {self.cpu * 1000:.1f} ms)"


def time_interleaved(runs: list[Callable[[], object]], repeats: int) -> list[Timing]:
    """Each run once untimed (warms the OS page cache), then `repeats` rounds of all of them.

    Interleaving keeps a change in machine load from favouring one of them.
    """
    for run in runs:
        run()
    wall: list[list[float]] = [[] for _ in runs]
    cpu: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for k, run in enumerate(runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall[k].append(time.perf_counter() - start)
            cpu[k].append(time.process_time() - start_cpu)
    return [
        Timing(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu, strict=True)
    ]


def cold_loader(store: Store, model: str) -> Callable[[], object]:
    """`item_matrix` with localrec's matrix cache emptied first, so every call reads the db."""

    def run() -> object:
        store._matrix_cache.clear()
        return store.item_matrix(model)

    return run


def naive_matrix(store: Store, model: str) -> tuple[list[str], np.ndarray]:
    """The row-by-row way: same query, one np.frombuffer per row, then np.vstack."""
    rows = store._conn.execute(
        "SELECT v.owner, i.domain, v.dim, v.vector FROM vectors v "
        "JOIN items i ON i.id = v.owner WHERE v.kind = 'item' AND v.model = ? "
        "ORDER BY i.rowid",
        (model,),
    ).fetchall()
    ids = [r[0] for r in rows]
    vectors = [np.frombuffer(r[3], dtype="<f4") for r in rows]
    return ids, np.vstack(vectors)


def fill_synthetic(store: Store, n: int, seed: int, batch: int = 10_000) -> None:
    rng = np.random.default_rng(seed)
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        ids = [f"s{i:07d}" for i in range(start, stop)]
        vectors = rng.standard_normal((stop - start, SYNTHETIC_DIM), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        with store.write() as conn:
            store.upsert_items(
                conn,
                [
                    ItemRow(i, ("food", "kitchen")[k % 2], f"item {i}", {}, {})
                    for k, i in enumerate(ids)
                ],
            )
            store.put_vectors(conn, SYNTHETIC_MODEL, ids, ids, vectors)


def bench_matrix(args: argparse.Namespace, workdir: Path) -> list[Row]:
    store = Store(workdir / "synthetic.db")
    start = time.perf_counter()
    fill_synthetic(store, args.vectors, args.seed)
    # As encode_items does after encoding: the packed copy is what a cold load reads.
    store.pack_matrix(SYNTHETIC_MODEL)
    fill_s = time.perf_counter() - start
    size_mb = (workdir / "synthetic.db").stat().st_size / 1e6
    say(
        f"5. wrote {args.vectors} synthetic {SYNTHETIC_DIM}-dim vectors in {fill_s:.1f} s "
        f"(database {size_mb:.0f} MB)"
    )
    fast = store.item_matrix(SYNTHETIC_MODEL)
    ids, slow = naive_matrix(store, SYNTHETIC_MODEL)
    assert list(fast.ids) == ids and np.array_equal(fast.matrix, slow), "the two reads differ"
    assert fast.matrix.shape == (args.vectors, SYNTHETIC_DIM)

    del fast, ids, slow
    matrix, naive = time_interleaved(
        [cold_loader(store, SYNTHETIC_MODEL), lambda: naive_matrix(store, SYNTHETIC_MODEL)],
        args.repeats,
    )
    ratio = naive.wall / matrix.wall
    say(
        f"   item_matrix cold: {matrix}; naive row-by-row: {naive}; "
        f"naive/item_matrix {ratio:.2f}x (medians of {args.repeats})"
    )
    store.close()
    goal = MATRIX_GOAL_S * args.vectors / MATRIX_GOAL_N
    return [
        Row(
            f"item_matrix, {args.vectors} synthetic vectors (cold)",
            str(matrix),
            f"< {goal * 1000:.0f} ms",
            matrix.wall < goal,
        ),
        Row("naive row-by-row read, same vectors", f"{naive}, {ratio:.2f}x item_matrix"),
    ]


def print_table(rows: list[Row]) -> None:
    head = ("step", "figure", "goal", "met")
    cells = [
        (r.step, r.figure, r.goal, "" if r.met is None else ("yes" if r.met else "NO"))
        for r in rows
    ]
    widths = [max(len(c[k]) for c in [head, *cells]) for k in range(4)]
    line = "  ".join("-" * w for w in widths)
    say("")
    say("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
    say(line)
    for c in cells:
        say("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, help="use only the first N dataset items")
    parser.add_argument("--skip-encode", action="store_true", help="skip steps 2-4")
    parser.add_argument("--vectors", type=int, default=MATRIX_GOAL_N, help="synthetic vectors")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per matrix read")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.items is not None and args.items < 1:
        parser.error("--items must be at least 1")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_store-") as tmp:
        rows = bench_real(args, Path(tmp))
        rows += bench_matrix(args, Path(tmp))
    print_table(rows)
    load_after = os.getloadavg()
    say(
        f"\n{os.cpu_count()} CPUs; load average {load_before[0]:.2f} at the start, "
        f"{load_after[0]:.2f} at the end (other work on the machine slows every figure)"
    )
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
