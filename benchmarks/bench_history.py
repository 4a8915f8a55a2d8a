"""What an ad-hoc history at its limits costs: `recommend(history=...)` with the real model.

    .venv/bin/python benchmarks/bench_history.py [--runs 3]

Needs the default model pulled or converted (`localrec models convert`). Stores 120
catalogue items with their vectors, then times in the same run, with medians over --runs:

- one phrase (the baseline);
- 1,000 copies of one phrase, which is embedded once;
- 1,000 distinct phrases of about 40 tokens (MAX_HISTORY_EVENTS, 170,000 characters:
  within MAX_HISTORY_CHARS), each embedded.

Prints the medians and their ratios to the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from localrec.embedding.loader import open_encoder  # noqa: E402
from localrec.recommend.history import MAX_HISTORY_EVENTS  # noqa: E402
from localrec.recommend.recommender import Recommender  # noqa: E402
from localrec.store.db import Store  # noqa: E402
from localrec.store.ingest import add_items  # noqa: E402
from localrec.store.item_vectors import encode_items  # noqa: E402
from tests.helpers import catalogue_items  # noqa: E402

WORDS = [
    "apple",
    "banana",
    "cherry",
    "kettle",
    "whisk",
    "ladle",
    "saucepan",
    "grater",
    "sieve",
    "colander",
    "teapot",
]


def distinct(n: int) -> str:
    return "; ".join(
        f"bought {WORDS[i % 11]} {WORDS[(i // 11) % 11]} number {i} " + "fine " * 30
        for i in range(n)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "app.db"
        with Store(db) as store, open_encoder("all-minilm-l6-v2") as encoder:
            add_items(store, catalogue_items())
            encode_items(store, encoder)
        cases = {
            "1 phrase (baseline)": "bought a kettle",
            f"{MAX_HISTORY_EVENTS:,} copies of 1 phrase": "; ".join(
                ["bought a kettle"] * MAX_HISTORY_EVENTS
            ),
            f"{MAX_HISTORY_EVENTS:,} distinct phrases": distinct(MAX_HISTORY_EVENTS),
        }
        with Recommender(db) as rec:
            rec.recommend(history="bought tea", domain="kitchen", k=10)  # load the model
            medians = {}
            for name, history in cases.items():
                times = []
                for _ in range(runs):
                    start = time.perf_counter()
                    rec.recommend(history=history, domain="kitchen", k=10)
                    times.append(time.perf_counter() - start)
                medians[name] = statistics.median(times)
    base = medians["1 phrase (baseline)"]
    print(f"{'history':<28} {'median':>10} {'ratio':>8}")
    for name, seconds in medians.items():
        print(f"{name:<28} {seconds * 1000:>8.1f} ms {seconds / base:>7.1f}x")


if __name__ == "__main__":
    main()
