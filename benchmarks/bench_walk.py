"""What item-kNN's two-step walk costs `recommend`: one user against a whole domain.

    .venv/bin/python benchmarks/bench_walk.py [DATASET_DIR] [--users 35] [--domain kitchen]

Builds item-kNN from the dataset's training files (as `Recommender` builds it from a
database's events), then the walk's matrices, and times the hybrid's collaborative score
for the first --users test histories against every item of --domain: item-kNN alone
(two-hop weight 0) and item-kNN with its walk (weight 1), in the same run. Prints the
build times and the per-user medians, and the walk's extra time per user.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    sys.path.insert(0, str(REPO))
    from localrec.data.dataset import load_dataset
    from localrec.scoring.hybrid import combine_parts
    from localrec.scoring.itemknn import ItemKNNScorer
    from scripts.food_kitchen import food_kitchen_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=food_kitchen_dir(REPO))
    parser.add_argument("--users", type=int, default=35)
    parser.add_argument("--domain", default="kitchen")
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    if args.domain not in dataset.domain_names:
        raise SystemExit(f"unknown domain {args.domain!r}; use one of {dataset.domain_names}")
    domain = dataset.domain_names.index(args.domain)
    start = time.perf_counter()
    knn = ItemKNNScorer(dataset.train, dataset.n_items)
    built = time.perf_counter() - start
    start = time.perf_counter()
    _ = knn.transition
    walk_built = time.perf_counter() - start
    items = dataset.items_of_domain(domain)[None, :]
    alone: list[float] = []
    walked: list[float] = []
    for sequence in dataset.test[: args.users]:
        history = [np.asarray(sequence[:-1])]
        for weight, times in ((0.0, alone), (1.0, walked)):
            start = time.perf_counter()
            parts = {"itemknn": knn.score(history, items, domain)}
            if weight:
                parts["walk"] = knn.two_hop(history, items)
            combine_parts(parts, {"itemknn": 1.0, "walk": weight})
            times.append(time.perf_counter() - start)
    one, two = 1000 * statistics.median(alone), 1000 * statistics.median(walked)
    print(
        f"item-kNN built in {1000 * built:.0f} ms, "
        f"the walk's matrices in {1000 * walk_built:.0f} ms"
    )
    print(
        f"one user against {items.shape[1]:,} {args.domain} items, median of {len(alone)}: "
        f"item-kNN {one:.1f} ms, item-kNN and walk {two:.1f} ms "
        f"(+{two - one:.1f} ms, {two / one:.2f}x)"
    )


if __name__ == "__main__":
    main()
