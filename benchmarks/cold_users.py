"""Simulated cold users: the tuned adapter when no history item was seen in training.

    LOCALREC_HOME=... .venv/bin/python benchmarks/cold_users.py [DATASET_DIR] [--model NAME]

The Food-Kitchen test split has no user whose history is unknown to training, so this
script makes every test user cold: the adapter's learned input vectors are zeroed and
every item counts as unseen in training (as for items never seen there), which leaves the
user vector to the history's text alone, and item-kNN and its two-step walk get nothing
(a cold history has no co-occurrences). The tuned model and its hybrid (which for a cold
user blends the adapter with zero-shot text, at the weight `tune` chose on validation
users made cold) are scored against the zero-shot default on the eval protocol (test
split, 999 negatives, seed 42), in both settings. Needs `localrec tune DATASET_DIR` first.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent


class _NoCooccurrence:
    name = "itemknn-cold"

    def score(self, histories: Any, candidates: np.ndarray, domain: int) -> np.ndarray:
        return np.zeros(candidates.shape)

    def two_hop(self, histories: Any, candidates: np.ndarray) -> np.ndarray:
        return np.zeros(candidates.shape)


def main() -> None:
    sys.path.insert(0, str(REPO))
    from localrec.data.loading import dataset_store, load_cached_dataset
    from localrec.data.protocol import Scorer
    from localrec.evaluation.protocol import evaluate
    from localrec.evaluation.scorers import EmbeddingScorer, HybridRow, TunedRow
    from localrec.scoring.hybrid import HybridModel
    from localrec.tuning.storage import load_adapter
    from scripts.food_kitchen import food_kitchen_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=food_kitchen_dir(REPO))
    parser.add_argument("--model")
    args = parser.parse_args()
    cached = load_cached_dataset(args.dataset, args.model)
    spec, dataset, vectors = cached.spec, cached.dataset, cached.vectors
    with dataset_store(dataset) as store:
        adapter = load_adapter(store, spec.name)
    if adapter is None:
        raise SystemExit(f"no adapter for {spec.name}: run `localrec tune {args.dataset}` first")
    cold = copy.deepcopy(adapter)
    cold.seen = np.zeros_like(cold.seen)
    for a in cold.domains.values():
        if a.inputs is not None:
            a.inputs = np.zeros_like(a.inputs)
    zero_shot = EmbeddingScorer("zero-shot", "zero-shot", vectors, dataset.domains)
    model = HybridModel(cold, vectors, dataset.domains, _NoCooccurrence())  # type: ignore[arg-type]
    scorers: list[Scorer] = [
        zero_shot,
        TunedRow("tuned, cold", model),
        HybridRow("hybrid, cold", model),
    ]
    report = evaluate(dataset, "test", ("mixed", "cross"), scorers)
    print(f"{'method':<20} {'setting':<7} {'domain':<9} {'NDCG@10 %':>9}")
    for row in report.rows:
        print(f"{row.method:<20} {row.setting:<7} {row.domain:<9} {100 * row.ndcg_10:>9.2f}")


if __name__ == "__main__":
    main()
