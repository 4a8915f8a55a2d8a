"""Seed spread of `tune`, against the strongest baseline of the same run, on the test split.

    LOCALREC_HOME=... .venv/bin/python benchmarks/tune_seeds.py [DATASET_DIR] [--seeds 0 1 2 3 4]
        [--split test] [--json FILE]

Each seed trains the adapter in memory exactly as `localrec tune --seed N` would: on the
training sequences without each multi-domain training user's last item, choosing the
epoch and every weight of the hybrid on those held-out items plus the valid split
(`Validation.held_out_from`; built once and shared, so every seed is chosen on the same
collaborative scores). The adapter `tune` stored in the cache is left alone. Each is scored
on the eval protocol (999 negatives, negative-draw seed 42) beside every baseline of
`localrec eval` (fitted on all training sequences, as eval fits them), run once.

Prints, per seed: the choices `tune` prints (`tune_summary`), whether the hybrid was at
least every component alone on validation, its NDCG@10 per cell, the strongest baseline of
the run per cell and the paired difference from it (95% bootstrap interval, starred when it
excludes 0), coverage@10 and hub@10 against item-kNN's, and the seconds to train and to
score. Then per cell the median over the seeds, the change against the strongest baseline,
and in how many seeds the hybrid is +5% or more with an interval that excludes 0.
Needs the dataset's vectors in the cache: run `localrec eval DATASET_DIR` once first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GOAL = 0.05


def main() -> None:
    sys.path.insert(0, str(REPO))
    from localrec.data.loading import load_cached_dataset
    from localrec.data.protocol import SETTINGS
    from localrec.evaluation.comparison import paired_differences
    from localrec.evaluation.protocol import evaluate
    from localrec.evaluation.results import EvalReport
    from localrec.evaluation.runner import baseline_scorers
    from localrec.evaluation.scorers import HybridRow, TunedRow
    from localrec.scoring.adapter import AdapterConfig
    from localrec.scoring.hybrid import HybridModel
    from localrec.scoring.itemknn import ItemItemScorer, ItemKNNScorer
    from localrec.tuning.run import tune_summary
    from localrec.tuning.selection import Validation
    from localrec.tuning.train import train_adapter
    from scripts.food_kitchen import food_kitchen_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=food_kitchen_dir(REPO))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--split", choices=("test", "valid"), default="test")
    parser.add_argument("--model")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    cached = load_cached_dataset(args.dataset, args.model)
    if not cached.complete:
        raise SystemExit(f"item vectors missing: run `localrec eval {args.dataset}` first")
    spec, dataset, vectors, ids = cached.spec, cached.dataset, cached.vectors, cached.ids
    settings = SETTINGS
    cells: list[tuple[str, str]] = [(s, d) for s in settings for d in dataset.domain_names]

    start = time.perf_counter()
    baselines = baseline_scorers(dataset)
    base = evaluate(dataset, args.split, settings, baselines)
    base_seconds = time.perf_counter() - start
    names = [b.name for b in baselines]
    strongest: dict[tuple[str, str], str] = {
        cell: max(names, key=lambda n, c=cell: base.row(n, *c).ndcg_10)  # type: ignore[misc]
        for cell in cells
    }
    knn = next(b for b in baselines if isinstance(b, ItemKNNScorer))
    others = {b.name: b for b in baselines if isinstance(b, ItemItemScorer)}
    print(f"baselines ({', '.join(names)}) fitted and scored in {base_seconds:.0f} s")
    print(f"{'cell':<16}" + "".join(f"{n:>14}" for n in names))
    for cell in cells:
        row = "".join(f"{100 * base.row(n, *cell).ndcg_10:14.2f}" for n in names)
        print(f"{' '.join(cell):<16}{row}   strongest: {strongest[cell]}")

    start = time.perf_counter()
    validation = Validation.held_out_from(dataset, vectors, AdapterConfig())
    print(
        f"\nvalidation: {len(validation.dataset.valid)} cases per setting "
        f"({validation.held_out} cut from training sequences, "
        f"{len(dataset.valid)} of the valid split), built in {time.perf_counter() - start:.0f} s"
    )
    figures: dict[str, Any] = {
        "split": args.split,
        "baselines": {" ".join(c): {n: base.row(n, *c).ndcg_10 for n in names} for c in cells},
        "strongest": {" ".join(c): n for c, n in strongest.items()},
        "seeds": {},
    }
    for seed in args.seeds:
        start = time.perf_counter()
        adapter = train_adapter(
            validation.dataset,
            vectors,
            spec.name,
            ids,
            AdapterConfig(seed=seed),
            validation=validation,
        )
        trained = time.perf_counter() - start
        model = HybridModel.over_sequences(
            adapter, vectors, dataset.domains, dataset.train, knn=knn, others=others
        )
        start = time.perf_counter()
        ours = evaluate(
            dataset, args.split, settings, [TunedRow("tuned", model), HybridRow("hybrid", model)]
        )
        scored = time.perf_counter() - start
        report = EvalReport(
            base.split,
            base.n_negatives,
            base.seed,
            [*base.rows, *ours.rows],
            {**base.cases, **ours.cases},
            [*base.slices, *ours.slices],
            base.domain_names,
        )
        print(f"\nseed {seed}: trained in {trained:.0f} s, scored in {scored:.0f} s")
        for line in tune_summary(adapter):
            print(f"  {line}")
        figures["seeds"][seed] = seed_figures(
            adapter, report, strongest, cells, trained, scored, paired_differences
        )
    summarise(figures, cells, args.seeds)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
        print(f"\nwrote {args.json}")


def seed_figures(
    adapter: Any,
    report: Any,
    strongest: dict[tuple[str, str], str],
    cells: list[tuple[str, str]],
    trained: float,
    scored: float,
    paired_differences: Any,
) -> dict[str, Any]:
    """One seed's figures per cell, printed as they come."""
    out: dict[str, Any] = {"train_seconds": trained, "eval_seconds": scored, "cells": {}}
    print(
        f"  {'cell':<16}{'hybrid':>8}{'tuned':>8}{'strongest':>14}{'change':>8}"
        f"{'paired difference [95%]':>30}{'cov@10':>8}{'knn':>6}{'hub@10':>8}{'knn':>6}"
        f"  valid: hybrid >= components"
    )
    for cell in cells:
        name = strongest[cell]
        diff = next(
            d
            for d in paired_differences(report, name)
            if d.method == "hybrid" and (d.setting, d.domain) == cell
        )
        hybrid, knn = report.row("hybrid", *cell), report.row("itemknn", *cell)
        bar = report.row(name, *cell).ndcg_10
        d = adapter.domain_names.index(cell[1])
        notes = adapter.domains[d].choices.get(cell[0], {}) if d in adapter.domains else {}
        valid = adapter.domains[d].hybrid_ndcg.get(cell[0], 0.0) if d in adapter.domains else 0.0
        floor = max((v for k, v in notes.items() if k.startswith("ndcg ")), default=0.0)
        star = "*" if diff.clear else " "
        print(
            f"  {' '.join(cell):<16}{100 * hybrid.ndcg_10:8.2f}"
            f"{100 * report.row('tuned', *cell).ndcg_10:8.2f}"
            f"{100 * bar:8.2f} {name[:5]:<5}{100 * (hybrid.ndcg_10 / bar - 1):+7.1f}%"
            f"{100 * diff.difference:+12.2f}"
            f" [{100 * diff.low:+6.2f}, {100 * diff.high:+6.2f}]{star}"
            f"{100 * hybrid.coverage_10:8.1f}{100 * knn.coverage_10:6.1f}"
            f"{100 * hybrid.hub_10:8.1f}{100 * knn.hub_10:6.1f}"
            f"  {100 * valid:.2f} >= {100 * floor:.2f}: {valid >= floor}"
        )
        out["cells"][" ".join(cell)] = {
            "hybrid": hybrid.ndcg_10,
            "tuned": report.row("tuned", *cell).ndcg_10,
            "strongest": name,
            "strongest_ndcg": bar,
            "difference": diff.difference,
            "low": diff.low,
            "high": diff.high,
            "coverage": hybrid.coverage_10,
            "itemknn_coverage": knn.coverage_10,
            "hub": hybrid.hub_10,
            "itemknn_hub": knn.hub_10,
            "valid_hybrid": valid,
            "valid_best_component": floor,
            "choices": {
                "cf_weights": adapter.domains[d].cf_weights.get(cell[0]),
                "hybrid_weight": adapter.domains[d].hybrid_weight.get(cell[0]),
                "bias_shrink": adapter.domains[d].bias_shrink.get(cell[0]),
                "popularity_weight": adapter.domains[d].popularity_weight.get(cell[0]),
                "rare_weight": adapter.domains[d].rare_weight,
                "epoch": adapter.domains[d].epoch,
                "notes": notes,
            }
            if d in adapter.domains
            else None,
        }
    return out


def summarise(figures: dict[str, Any], cells: list[tuple[str, str]], seeds: list[int]) -> None:
    n = len(seeds)
    print(f"\nhybrid: median [min, max] over {n} seeds against the run's strongest baseline")
    for cell in cells:
        key = " ".join(cell)
        per = [figures["seeds"][s]["cells"][key] for s in seeds]
        values = [p["hybrid"] for p in per]
        bar = per[0]["strongest_ndcg"]
        median = statistics.median(values)
        met = sum(p["hybrid"] >= bar * (1 + GOAL) and p["low"] > 0 for p in per)
        above = sum(p["low"] > 0 for p in per)
        diffs = sorted(per, key=lambda p: p["difference"])
        mid = diffs[len(diffs) // 2]
        print(
            f"  {key:<16}{100 * median:7.2f} [{100 * min(values):5.2f}, {100 * max(values):5.2f}]"
            f"  {per[0]['strongest']} {100 * bar:.2f}: {100 * (median / bar - 1):+6.1f}%;"
            f" median seed's difference {100 * mid['difference']:+.2f}"
            f" [{100 * mid['low']:+.2f}, {100 * mid['high']:+.2f}];"
            f" interval above 0 in {above}/{n}, +{100 * GOAL:.0f}% and above 0 in {met}/{n}"
        )
        figures.setdefault("summary", {})[key] = {
            "median": median,
            "min": min(values),
            "max": max(values),
            "change": median / bar - 1,
            "seeds_above_zero": above,
            "seeds_goal_met": met,
        }
    times = [figures["seeds"][s]["train_seconds"] for s in seeds]
    print(f"train seconds per seed: median {statistics.median(times):.0f} ({n} seeds)")


if __name__ == "__main__":
    main()
