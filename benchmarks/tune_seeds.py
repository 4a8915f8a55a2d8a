"""Seed spread of the tuned adapter: train it with several seeds, evaluate each on test.

    LOCALREC_HOME=... .venv/bin/python benchmarks/tune_seeds.py [DATASET_DIR] [--seeds 0 1 2]

The README's results table is one `localrec tune` (seed 0). How much of a difference
against item-kNN is the seed? Each seed trains an adapter in memory, exactly as `localrec
tune --seed N` would (the adapter `tune` stored in the cache is left alone), and is scored
on the eval protocol (test split, 999 negatives, negative-draw seed 42) beside item-kNN.
Prints NDCG@10 per seed, item-kNN and its two-step walk alone (`itemknn-2hop`), then per
cell the median, the range and the median change against item-kNN, and how many seeds
reach +15% (the `cross` goal) and +5% (`mixed`); then the same for the hybrid on the
rare-target slice (targets seen at most 3 times in training), against item-kNN on it.
Needs the dataset's vectors in the cache: run `localrec eval DATASET_DIR` once first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    sys.path.insert(0, str(REPO))
    from localrec.data.loading import load_cached_dataset
    from localrec.data.protocol import Scorer
    from localrec.evaluation.protocol import evaluate
    from localrec.evaluation.scorers import HybridRow, TunedRow
    from localrec.scoring.adapter import AdapterConfig
    from localrec.scoring.hybrid import HybridModel
    from localrec.scoring.itemknn import ItemKNNScorer, TwoHopScorer
    from localrec.tuning.train import train_adapter
    from scripts.food_kitchen import food_kitchen_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=food_kitchen_dir(REPO))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model")
    args = parser.parse_args()
    cached = load_cached_dataset(args.dataset, args.model)
    if not cached.complete:
        raise SystemExit(f"item vectors missing: run `localrec eval {args.dataset}` first")
    spec, dataset, vectors, ids = cached.spec, cached.dataset, cached.vectors, cached.ids
    knn = ItemKNNScorer(dataset.train, dataset.n_items)
    cells = [(s, d) for s in ("mixed", "cross") for d in dataset.domain_names]
    figures: dict[str, dict[tuple[str, str], list[float]]] = {"tuned": {}, "hybrid": {}}
    baseline: dict[tuple[str, str], float] = {}
    walk: dict[tuple[str, str], float] = {}
    rare: dict[tuple[str, str], list[float]] = {}
    rare_baseline: dict[tuple[str, str], float] = {}
    header = " ".join(f"{s} {d}".rjust(14) for s, d in cells)
    print(f"{'seed':>4} {'method':<8} {header}  train s")
    for seed in args.seeds:
        start = time.perf_counter()
        adapter = train_adapter(dataset, vectors, spec.name, ids, AdapterConfig(seed=seed))
        trained = time.perf_counter() - start
        model = HybridModel(adapter, vectors, dataset.domains, knn)
        tuned, hybrid = TunedRow("tuned", model), HybridRow("hybrid", model)
        scorers: list[Scorer] = [knn, TwoHopScorer(knn), tuned, hybrid]
        report = evaluate(dataset, "test", ("mixed", "cross"), scorers)
        for cell in cells:
            baseline[cell] = report.row("itemknn", *cell).ndcg_10
            walk[cell] = report.row("itemknn-2hop", *cell).ndcg_10
            for method in figures:
                figures[method].setdefault(cell, []).append(report.row(method, *cell).ndcg_10)
        for part in report.slices:
            cell = (part.setting, part.domain)
            if part.slice == "rare-target" and part.method == "itemknn":
                rare_baseline[cell] = part.ndcg_10
            elif part.slice == "rare-target" and part.method == "hybrid":
                rare.setdefault(cell, []).append(part.ndcg_10)
        for method in figures:
            row = " ".join(f"{100 * figures[method][c][-1]:14.2f}" for c in cells)
            took = f"  {trained:.0f}" if method == "tuned" else ""
            print(f"{seed:>4} {method:<8} {row}{took}")
    print(f"\n{'':>4} {'itemknn':<8} " + " ".join(f"{100 * baseline[c]:14.2f}" for c in cells))
    print(f"{'':>4} {'2hop':<8} " + " ".join(f"{100 * walk[c]:14.2f}" for c in cells))
    n = len(args.seeds)
    for method, per_cell in figures.items():
        print(f"\n{method}: median [min, max] over {n} seeds, median change vs item-kNN")
        for cell in cells:
            values = per_cell[cell]
            median = statistics.median(values)
            change = 100 * (median / baseline[cell] - 1)
            goal = 15 if cell[0] == "cross" else 5
            reached = sum(v >= baseline[cell] * (1 + goal / 100) for v in values)
            print(
                f"  {cell[0]:<5} {cell[1]:<8} {100 * median:6.2f} "
                f"[{100 * min(values):5.2f}, {100 * max(values):5.2f}]  {change:+6.1f}%  "
                f"+{goal}% in {reached}/{n} seeds"
            )
    print(f"\nhybrid on rare targets: median [min, max] over {n} seeds, item-kNN on them")
    for cell in cells:
        values = rare.get(cell, [])
        if not values:
            continue
        at_least = sum(v >= rare_baseline[cell] for v in values)
        print(
            f"  {cell[0]:<5} {cell[1]:<8} {100 * statistics.median(values):6.2f} "
            f"[{100 * min(values):5.2f}, {100 * max(values):5.2f}]  item-kNN "
            f"{100 * rare_baseline[cell]:5.2f}  not below it in {at_least}/{n} seeds"
        )


if __name__ == "__main__":
    main()
