"""Benchmark the collaborative and text baselines on the Food-Kitchen protocol.

Runs `localrec.evaluation.protocol.evaluate` (seed 42, 999 sampled negatives from the target's
domain, or every domain item with --full) in both settings for: random, popularity,
co-occurrence CF (plain, and with item-kNN's recency weights), RP3beta, sequence-aware
item-kNN, and TF-IDF (mean of history, and recency-weighted). Prints one row per method,
setting and target domain, metrics in %, then how long each method took to build and to
evaluate. From the repository root::

    .venv/bin/python benchmarks/bench_baselines.py            # test split
    .venv/bin/python benchmarks/bench_baselines.py --split valid

The data directory is --data, else $LOCALREC_FOOD_KITCHEN, else
../shared/data/amazon-food-kitchen next to the repository.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

# This checkout's localrec and scripts/, however the benchmark is started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localrec.data.dataset import SequenceDataset, load_dataset
from localrec.data.protocol import METRICS, SETTINGS, Scorer
from localrec.errors import LocalrecError
from localrec.evaluation.protocol import evaluate
from localrec.evaluation.results import MetricRow
from localrec.scoring.item_models import rp3beta_scorer
from localrec.scoring.itemknn import (
    ItemKNNScorer,
    PopularityScorer,
    RandomScorer,
    TfidfScorer,
    cooccurrence_scorer,
)
from scripts.food_kitchen import food_kitchen_dir

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = food_kitchen_dir(REPO)


def builders(ds: SequenceDataset) -> list[tuple[str, Callable[[], Scorer]]]:
    return [
        ("random", lambda: RandomScorer(seed=0)),
        ("popularity", lambda: PopularityScorer(ds.train, ds.n_items)),
        (
            "cooccurrence-plain",
            lambda: cooccurrence_scorer(
                ds.train, ds.n_items, recency_decay=1.0, name="cooccurrence-plain"
            ),
        ),
        ("cooccurrence", lambda: cooccurrence_scorer(ds.train, ds.n_items)),
        ("rp3beta", lambda: rp3beta_scorer(ds.train, ds.n_items)),
        ("itemknn", lambda: ItemKNNScorer(ds.train, ds.n_items)),
        ("tfidf", lambda: TfidfScorer(ds.item_texts())),
        (
            "tfidf-recency",
            lambda: TfidfScorer(ds.item_texts(), recency_decay=0.8, name="tfidf-recency"),
        ),
    ]


def format_rows(rows: list[MetricRow]) -> str:
    head = f"{'method':<14} {'setting':<7} {'domain':<8}" + "".join(f"{m:>12}" for m in METRICS)
    lines = [head + f"{'n':>6}", "-" * (len(head) + 6)]
    for r in rows:
        values = "".join(f"{100 * r.metric(m):>12.2f}" for m in METRICS)
        lines.append(f"{r.method:<14} {r.setting:<7} {r.domain:<8}{values}{r.n:>6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="dataset directory")
    parser.add_argument("--split", choices=("valid", "test"), default="test")
    parser.add_argument("--negatives", type=int, default=999)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--full", action="store_true", help="rank every item of the domain")
    parser.add_argument("--methods", nargs="*", help="only these methods (default: all)")
    args = parser.parse_args(argv)
    data = args.data or Path(os.environ.get("LOCALREC_FOOD_KITCHEN", DEFAULT_DATA))

    try:
        start = time.perf_counter()
        ds = load_dataset(data)
        load_s = time.perf_counter() - start
        print(
            f"{data}: {ds.n_items} items, {len(ds.train)} training sequences "
            f"({', '.join(ds.train_files)}), {len(ds.valid)} valid, {len(ds.test)} test; "
            f"loaded in {load_s:.2f} s"
        )
        rows: list[MetricRow] = []
        timings: list[tuple[str, float, float]] = []
        for name, build in builders(ds):
            if args.methods and name not in args.methods:
                continue
            start = time.perf_counter()
            scorer = build()
            built = time.perf_counter()
            report = evaluate(
                ds,
                split=args.split,
                settings=SETTINGS,
                scorers=[scorer],
                n_negatives=args.negatives,
                seed=args.seed,
                full=args.full,
            )
            timings.append((name, built - start, time.perf_counter() - built))
            rows.extend(report.rows)
    except LocalrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    mode = "full ranking" if args.full else f"{args.negatives} sampled negatives"
    print(f"\nsplit={args.split}, seed={args.seed}, {mode}; metrics in %\n")
    settings: list[str] = list(SETTINGS)
    # Stable sort: methods stay in the order they ran within each setting and domain.
    rows.sort(key=lambda r: (settings.index(r.setting), r.domain))
    print(format_rows(rows))
    print(f"\n{'method':<14} {'build s':>9} {'eval s':>9}")
    for name, build_s, eval_s in timings:
        print(f"{name:<14} {build_s:>9.2f} {eval_s:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
