"""The privacy/utility table of packs: the hybrid's NDCG@10 on the Food-Kitchen test split
when served from packs built with K = 1, 2, 5, 10, 20 (and N neighbours), with each pack's
size, against the database-served hybrid of the same run.

Needs a `localrec tune DATASET_DIR` first (the vectors and adapter in the dataset's cache).

    python benchmarks/pack_privacy.py [DATASET_DIR] [--k 1 2 5 10 20] [--neighbours 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localrec.evaluation.report import report_dict
from localrec.evaluation.runner import evaluate_dataset
from localrec.packs.build import build_pack
from localrec.packs.pack import open_pack
from scripts.food_kitchen import food_kitchen_dir

CELLS = [("mixed", "food"), ("mixed", "kitchen"), ("cross", "food"), ("cross", "kitchen")]


def hybrid_cells(**options: object) -> dict[tuple[str, str], float]:
    report = report_dict(evaluate_dataset(ARGS.dataset, methods=(), **options))
    return {
        (row["setting"], row["domain"]): 100 * row["ndcg@10"]
        for row in report["results"]
        if row["method"] == "localrec:hybrid"
    }


def main() -> None:
    base = hybrid_cells()
    print("| pack | " + " | ".join(f"{s} {d}" for s, d in CELLS) + " | worst vs db | size |")
    print("|---" * (len(CELLS) + 3) + "|")
    print("| database-served | " + " | ".join(f"{base[c]:.2f}" for c in CELLS) + " | | |")
    rows = [(1, 0, "float32")] * ARGS.exact + [(k, ARGS.neighbours, ARGS.dtype) for k in ARGS.k]
    with tempfile.TemporaryDirectory() as tmp:
        for k, n, dtype in rows:
            path = Path(tmp) / f"k{k}-n{n}.lrpack"
            build_pack(
                path,
                dataset_dir=ARGS.dataset,
                min_users=k,
                neighbours=n,
                full_precision=dtype == "float32",
                vector_dtype=dtype,
            )
            cells = hybrid_cells(pack=open_pack(path))
            worst = min(100 * (cells[c] / base[c] - 1) for c in CELLS)
            label = f"K={k}, N={n or 'all'}, {dtype}"
            shown = " | ".join(f"{cells[c]:.2f}" for c in CELLS)
            size = path.stat().st_size / 1e6
            print(f"| {label} | {shown} | {worst:+.1f}% | {size:.1f} MB |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "dataset",
        nargs="?",
        type=Path,
        default=food_kitchen_dir(Path(__file__).resolve().parent.parent),
    )
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 5, 10, 20])
    parser.add_argument("--neighbours", type=int, default=100)
    parser.add_argument("--dtype", default="int8", choices=["int8", "float16", "float32"])
    parser.add_argument("--exact", type=int, default=1, help="1: also the K=1, N=all, float32 pack")
    ARGS = parser.parse_args()
    main()
