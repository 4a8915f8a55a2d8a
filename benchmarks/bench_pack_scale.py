"""A pack build at scale, on one machine: the local engine against Ray with 1 and 2 workers.

    LOCALREC_HOME=/tmp/lrhome .venv/bin/python benchmarks/bench_pack_scale.py \\
        [--items 200000] [--events 5000000] [--encode-sample 3000] [--json FILE]

Needs the default model on disk (`localrec models pull`) and `pip install 'localrec[ray]'`.

A synthetic catalogue of `--items` items in two domains with made-up product titles, and
`--events` events: users' sequence lengths are 1 + a geometric draw of mean 9 (at most
100 events), items drawn with a Zipf-like popularity (weight 1 / (rank + 10) ** 0.9), so
that pairs repeat and K = 2 keeps some. Fixed seed: every run sees the same data.

Each stage of each engine runs in a process of its own, for its time and peak memory:

- count: the pack's aggregates (pair weights, pair users, popularity, K = 2, N = 100);
  local: `packs.aggregates.local_aggregates`; Ray: `RayEngine.aggregates` over chunks of
  the users (`packs.sources.chunks_from_sequences`), on a local Ray of that many CPUs;
- encode: `--encode-sample` of the titles (all of them take ~10 minutes per run at
  ~300/s on 2 cores); local: `encode_items` with `open_encoder()`; Ray: `RayEngine.encode`,
  one actor per worker. The time for all `--items` is extrapolated from the rate after the
  first batch came back (plus the time until it did), and marked as such;
- write: `write_pack` of the count's result (driver side, local only).

Time: the stage alone (Ray's start is printed apart). Memory: the peak of the sum of the
proportional set sizes (PSS, so Ray's shared object store is counted once) of the stage's
process and every process under it (Ray's raylet, object store, workers), sampled every
0.2 s; and the driver's own peak (VmHWM). Medians are not taken: one run each, the runs
are minutes long; say so when quoting them.

Then, on paper, 10M items and 1B events (the same length distribution) on 32 nodes from
the measured per-worker rates, and which stage bounds the build.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SEED = 11
WORDS = tuple(
    " ".join(
        (
            "organic green black herbal cast iron stainless steel ceramic bamboo glass copper",
            "nonstick chef knife skillet kettle teapot mug bowl spatula whisk grinder blender",
            "toaster coffee espresso matcha oolong honey almond walnut cocoa vanilla cinnamon",
            "sea salt pepper olive oil vinegar pasta rice flour sugar oat granola cereal snack",
        )
    ).split(" ")
)


def synthetic(items: int, events: int) -> tuple[list[np.ndarray], list[str]]:
    """The users' sequences (item rows) and the items' titles."""
    rng = np.random.default_rng(SEED)
    lengths: list[int] = []
    total = 0
    while total < events:
        draw = np.minimum(1 + rng.geometric(1 / 9, size=100_000), 100)
        for n in draw.tolist():
            if total >= events:
                break
            n = min(n, events - total)
            lengths.append(n)
            total += n
    weights = 1.0 / (np.arange(items) + 10.0) ** 0.9
    ranked = rng.permutation(items)
    flat = ranked[rng.choice(items, size=total, p=weights / weights.sum())].astype(np.int64)
    sequences = np.split(flat, np.cumsum(lengths)[:-1])
    words = np.asarray(WORDS)
    picks = rng.integers(0, len(words), size=(items, 5))
    titles = [f"{' '.join(words[p])} model {i}" for i, p in enumerate(picks)]
    return sequences, titles


def pair_terms(sequences: list[np.ndarray]) -> int:
    lengths = np.fromiter((len(s) for s in sequences), np.int64, len(sequences))
    return int((lengths * (lengths - 1) // 2).sum())


def _peak_kb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


def child(engine: str, stage: str, items: int, events: int, sample: int) -> dict[str, Any]:
    """One stage of one engine, in this process; what it measured."""
    from localrec.models.cache import model_sha256, resolve_model
    from localrec.packs.aggregates import local_aggregates
    from localrec.packs.format import PackItem, write_pack
    from localrec.store.db import Store
    from localrec.store.ingest import add_items

    sequences, titles = synthetic(items, events)
    out: dict[str, Any] = {"engine": engine, "stage": stage}
    workers = int(engine[3:]) if engine.startswith("ray") else 0
    engine_context: Any = None
    if workers:
        from localrec.packs.ray_engine import ray_engine

        start = time.perf_counter()
        engine_context = ray_engine(workers=workers)
        cluster = engine_context.__enter__()
        out["ray_start_s"] = time.perf_counter() - start
    try:
        if stage in ("count", "write"):
            out["users"], out["pair_terms"] = len(sequences), pair_terms(sequences)
            start = time.perf_counter()
            if workers:
                from localrec.packs.sources import chunks_from_sequences

                chunks = chunks_from_sequences(cluster.ray, sequences, cluster.workers)
                counted = cluster.aggregates(chunks, items, 2, 100)
            else:
                counted = local_aggregates(sequences, items, 2, 100)
            out["seconds"] = time.perf_counter() - start
            out["kept_pairs"] = int(counted.similarity.nnz)
            if stage == "write":
                rng = np.random.default_rng(SEED)
                vectors = rng.standard_normal((items, 384)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                rows = [PackItem(str(i), "food", t, "{}", "{}") for i, t in enumerate(titles)]
                start = time.perf_counter()
                write_pack(
                    Path(os.environ["BENCH_WORK"]) / "scale.lrpack",
                    {"model": "bench", "dim": 384},
                    rows,
                    vectors,
                    counted.popularity,
                    counted.similarity,
                    None,
                )
                out["write_seconds"] = time.perf_counter() - start
        else:
            db = Path(os.environ["BENCH_WORK"]) / f"encode-{engine}.db"
            db.unlink(missing_ok=True)
            with Store(db) as store:
                add_items(
                    store,
                    ({"id": str(i), "domain": "food", "title": titles[i]} for i in range(sample)),
                )
                spec, gguf = resolve_model(None)
                marks: list[tuple[float, int]] = []
                start = time.perf_counter()

                def progress(done: int, total: int) -> None:
                    marks.append((time.perf_counter() - start, done))

                if workers:
                    cluster.encode(store, spec, gguf, model_sha256(spec, gguf), progress=progress)
                else:
                    from localrec.embedding.loader import open_encoder
                    from localrec.store.item_vectors import encode_items

                    with open_encoder() as encoder:
                        encode_items(store, encoder, progress=progress)
                out["seconds"] = time.perf_counter() - start
                first = next((t, d) for t, d in marks if d > 0)
                last = marks[-1]
                rate = (last[1] - first[1]) / max(last[0] - first[0], 1e-9)
                out.update(
                    encoded=sample,
                    first_batch_s=first[0],
                    steady_per_s=rate,
                    extrapolated_all_s=first[0] + (items - first[1]) / rate,
                )
    finally:
        if engine_context is not None:
            engine_context.__exit__(None, None, None)
    out["driver_peak_mb"] = _peak_kb() / 1024
    return out


def _tree(pid: int) -> list[int]:
    """`pid` and every process under it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except OSError:
                continue
            todo += [int(c) for c in children]
    return found


def _pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def run_child(engine: str, stage: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--child", engine, stage, "--items", str(args.items),
        "--events", str(args.events), "--encode-sample", str(args.encode_sample),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], sum(_pss_kb(p) for p in _tree(proc.pid)))
            done.wait(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    stdout, _ = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{engine} {stage} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["tree_peak_pss_mb"] = peak[0] / 1024
    return result


def paper(results: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """10M items, 1B events on 32 nodes of `--node-cpus` CPUs, from the per-worker rates."""
    by = {(r["engine"], r["stage"]): r for r in results}
    lines = []
    items, events, nodes, cpus = 10_000_000, 1_000_000_000, 32, args.node_cpus
    workers = nodes * cpus
    count = by.get(("ray2", "count")) or by.get(("ray1", "count"))
    encode = by.get(("ray2", "encode")) or by.get(("ray1", "encode"))
    write = by.get(("local", "write"))
    if not (count and encode and write):
        return ["(the paper figure needs the count and encode stages of Ray and the write)"]
    n_workers = int(count["engine"][3:])
    terms_per_worker_s = count["pair_terms"] / count["seconds"] / n_workers
    terms = count["pair_terms"] / args.events * events
    count_s = terms / terms_per_worker_s / workers
    enc_workers = int(encode["engine"][3:])
    titles_per_worker_s = encode["steady_per_s"] / enc_workers
    encode_s = items / titles_per_worker_s / workers
    kept_per_item = write["kept_pairs"] / args.items
    kept = kept_per_item * items
    write_s = write["write_seconds"] / max(write["kept_pairs"], 1) * kept
    lines.append(
        f"on paper: {items:,} items, {events:,} events, {nodes} nodes x {cpus} CPUs = "
        f"{workers} workers, the same length distribution ({terms:,.0f} pair terms)"
    )
    lines.append(
        f"  encode  {titles_per_worker_s:.0f} titles/s per worker -> {encode_s / 60:.1f} min"
    )
    lines.append(
        f"  count   {terms_per_worker_s / 1e6:.2f} M pair terms/s per worker -> "
        f"{count_s / 60:.1f} min (if the shuffle scales like the map)"
    )
    lines.append(
        f"  write   one driver, {kept:,.0f} kept pairs at the measured rate -> "
        f"{write_s / 60:.1f} min (single node: does not shrink with the cluster)"
    )
    bound = max((encode_s, "encoding"), (count_s, "counting"), (write_s, "the driver's pack write"))
    lines.append(f"  bound by {bound[1]}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--encode-sample", type=int, default=3000)
    parser.add_argument("--engines", default="local,ray1,ray2")
    parser.add_argument("--stages", default="count,encode")
    parser.add_argument("--node-cpus", type=int, default=16)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "STAGE"))
    parser.add_argument(
        "--results",
        type=Path,
        nargs="+",
        help="Run nothing: summarise the result lines these earlier outputs printed (the "
        "last line of each engine and stage counts).",
    )
    args = parser.parse_args()
    if args.child:
        engine, stage = args.child
        print(json.dumps(child(engine, stage, args.items, args.events, args.encode_sample)))
        return
    if args.results:
        found = {}
        for path in args.results:
            for line in path.read_text().splitlines():
                if line.startswith("{"):
                    row = json.loads(line)
                    found[row["engine"], row["stage"]] = row
        results = list(found.values())
        summarise(results, args)
        return
    work = Path(os.environ.get("BENCH_WORK") or Path.cwd() / "bench-pack-scale")
    work.mkdir(parents=True, exist_ok=True)
    os.environ["BENCH_WORK"] = str(work)
    results = []
    for stage in args.stages.split(","):
        for engine in args.engines.split(","):
            # The local count is followed by writing its pack (the driver's last step).
            stage_run = "write" if stage == "count" and engine == "local" else stage
            result = run_child(engine, stage_run, args)
            results.append(result)
            print(json.dumps(result), flush=True)
    summarise(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def summarise(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    base = {r["stage"]: r for r in results if r["engine"] == "local"}
    for r in results:
        own = "count" if r["stage"] == "write" else r["stage"]
        ref = base.get("write" if own == "count" else own)
        ratio = f"{r['seconds'] / ref['seconds']:.2f}x local" if ref else ""
        extra = (
            f", all {args.items:,} extrapolated {r['extrapolated_all_s'] / 60:.1f} min"
            if "extrapolated_all_s" in r
            else ""
        )
        print(
            f"{r['engine']:>5} {own:<6} {r['seconds']:8.1f} s ({ratio}){extra}; peak "
            f"{r['tree_peak_pss_mb']:.0f} MB (all processes, PSS), driver "
            f"{r['driver_peak_mb']:.0f} MB"
            + (f"; Ray start {r['ray_start_s']:.1f} s" if "ray_start_s" in r else "")
        )
    for line in paper(results, args):
        print(line)


if __name__ == "__main__":
    main()
