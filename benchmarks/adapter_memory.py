"""The adapter's training memory for a catalogue of `--items` items, measured.

    .venv/bin/python benchmarks/adapter_memory.py [--items 1000000] [--events 300000]

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
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CODE = """
import json, sys
import numpy as np
from pathlib import Path
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


def peak(items: int, events: int) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", CODE, str(items), str(events)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return float(result["peak_rss_mb"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=300_000)
    args = parser.parse_args()
    small_items = args.items // 10
    small, large = peak(small_items, args.events), peak(args.items, args.events)
    per_item = (large - small) * 1024 * 1024 / (args.items - small_items)
    print(f"{small_items:>9,} items: peak RSS {small:,.0f} MB")
    print(f"{args.items:>9,} items: peak RSS {large:,.0f} MB")
    print(f"per item: {per_item:,.0f} bytes (vectors alone: {384 * 4} bytes)")


if __name__ == "__main__":
    main()
