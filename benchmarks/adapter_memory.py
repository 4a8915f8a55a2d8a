"""The adapter's training memory for a catalogue of `--items` items, measured; or, with
`--sample-users N`, for growing events with and without a sample of N training users.

    .venv/bin/python benchmarks/adapter_memory.py [--items 1000000] [--events 300000]
    .venv/bin/python benchmarks/adapter_memory.py --sample-users 5000 \
        [--items 20000] [--grow 300000 3000000]

`localrec tune` trains on one node; what grows with the catalogue is the item vectors
(items x 384 float32), each domain's learned rows (offsets and input vectors, items x 64
float32), Adam's two moments of them, the best epoch's copy, and the ridge regression that
predicts unseen items' biases from their vectors. This trains the default adapter
(`AdapterConfig()`, one epoch) on random unit vectors for `--items` items in two domains
and a few synthetic events (so that the item-sized arrays dominate), in a process of its
own, and prints that process's peak RSS (VmHWM) beside the same run with `--items` / 10,
so the per-item cost can be read off. Events cost on top of this: every prefix -> next
pair of the training sequences is held as two sparse rows (`tuning.train.build_pairs`),
and item-kNN's pair matrix of the training sequences is built on this node too.

With `--sample-users N` it measures those: for each event count of `--grow` it writes a
synthetic dataset directory (the Food-Kitchen layout: one training file, a valid split of
500 users), and trains the default adapter for one epoch in a process of its own from
`load_dataset(DIR)` (every user) and from `load_dataset(DIR, sample_users=N)` (what `tune
--sample-users N` reads), and prints each run's peak RSS, time and training pairs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CODE = """
import json, sys
import numpy as np
from pathlib import Path
from typing import Any
from localrec.data.dataset import SequenceDataset
from localrec.scoring.adapter import AdapterConfig
from localrec.tuning.train import train_adapter

items, events = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(3)
vectors = rng.standard_normal((items, 384)).astype(np.float32)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
lengths = np.minimum(2 + rng.geometric(1 / 8, size=events // 9), 100)
flat = rng.integers(0, items, size=int(lengths.sum())).astype(np.int32)
sequences = np.split(flat, np.cumsum(lengths)[:-1])
cut = len(sequences) // 10
dataset = SequenceDataset(
    root=Path("synthetic"),
    item_ids=np.arange(items, dtype=np.int64),
    domains=(np.arange(items) >= items // 2).astype(np.int8),
    domain_names=("food", "kitchen"),
    titles=[""] * items,
    attributes=[""] * items,
    train=sequences[cut:],
    valid=sequences[:cut],
    test=[],
)
from localrec.errors import TrainingError
try:
    train_adapter(
        dataset, vectors, "synthetic", [str(i) for i in range(items)], AdapterConfig(epochs=1)
    )
    kept = "kept"
except TrainingError as exc:  # random data: the hybrid may keep none; the memory was used
    kept = str(exc)[:120]
status = open("/proc/self/status").read()
peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({"items": items, "peak_rss_mb": peak, "adapter": kept}))
"""


def child(code: str, *args: object) -> dict[str, Any]:
    """The JSON line that `code` prints last, run in a process of its own."""
    argv = [sys.executable, "-c", code, *map(str, args)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def peak(items: int, events: int) -> float:
    result = child(CODE, items, events)
    print(json.dumps(result), flush=True)
    return float(result["peak_rss_mb"])


SAMPLED = """
import json, sys, time
import numpy as np
from localrec.data.dataset import load_dataset
from localrec.errors import TrainingError
from localrec.scoring.adapter import AdapterConfig
from localrec.tuning.train import train_adapter

root, sample = sys.argv[1], int(sys.argv[2])
start = time.perf_counter()
dataset = load_dataset(root, sample or None, seed=0)
rng = np.random.default_rng(3)
vectors = rng.standard_normal((dataset.n_items, 384)).astype(np.float32)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
ids = [str(i) for i in range(dataset.n_items)]
try:
    adapter = train_adapter(dataset, vectors, "synthetic", ids, AdapterConfig(epochs=1))
    pairs = adapter.train_pairs
except TrainingError as exc:  # random data: the hybrid may keep none; the memory was used
    pairs = -1
status = open("/proc/self/status").read()
print(json.dumps({
    "users": len(dataset.train),
    "events": int(sum(len(s) for s in dataset.train)),
    "pairs": pairs,
    "seconds": round(time.perf_counter() - start, 1),
    "peak_rss_mb": int(status.split("VmHWM:")[1].split()[0]) / 1024,
}))
"""


def write_dataset(root: Path, items: int, events: int) -> None:
    """A synthetic dataset directory: `items` items in two domains, users of 2 + geometric
    (mean 8) events, at most 100, uniform items; 500 of them are the valid split."""
    rng = np.random.default_rng(3)
    lengths = np.minimum(2 + rng.geometric(1 / 8, size=events // 10), 100)
    flat = rng.integers(0, items, size=int(lengths.sum()))
    sequences = np.split(flat, np.cumsum(lengths)[:-1])
    root.mkdir(parents=True)
    with (root / "items.jsonl").open("w") as f:
        for i in range(items):
            domain = "food" if i < items // 2 else "kitchen"
            f.write(json.dumps({"item_id": i, "domain": domain, "title": f"item {i}"}) + "\n")
    for name, part in (("valid.txt", sequences[:500]), ("train_overlap.txt", sequences[500:])):
        with (root / name).open("w") as f:
            f.writelines(f"{n}\t{','.join(map(str, s.tolist()))}\n" for n, s in enumerate(part))
    (root / "test.txt").write_text((root / "valid.txt").read_text())


def sampled(items: int, grow: list[int], sample: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for events in grow:
            root = Path(tmp) / f"events-{events}"
            write_dataset(root, items, events)
            for n in (0, sample):
                start = time.perf_counter()
                result = child(SAMPLED, root, n)
                result["wall_s"] = round(time.perf_counter() - start, 1)
                label = f"sample of {n:,} users" if n else "every user"
                print(f"{events:>10,} events, {label:>22}: {json.dumps(result)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--sample-users", type=int, default=0)
    parser.add_argument("--grow", type=int, nargs="+", default=[300_000, 3_000_000])
    args = parser.parse_args()
    if args.sample_users:
        sampled(args.items or 20_000, args.grow, args.sample_users)
        return
    args.items = args.items or 1_000_000
    small_items = args.items // 10
    small, large = peak(small_items, args.events), peak(args.items, args.events)
    per_item = (large - small) * 1024 * 1024 / (args.items - small_items)
    print(f"{small_items:>9,} items: peak RSS {small:,.0f} MB")
    print(f"{args.items:>9,} items: peak RSS {large:,.0f} MB")
    print(f"per item: {per_item:,.0f} bytes (vectors alone: {384 * 4} bytes)")


if __name__ == "__main__":
    main()
