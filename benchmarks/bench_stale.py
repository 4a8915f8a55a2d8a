"""What `recommend`'s stale-vector note costs: the count worked out, and the count kept.

    .venv/bin/python benchmarks/bench_stale.py [DATASET_DIR] [--items 3000] [--runs 15]

Stores the first --items Kitchen titles of the Food-Kitchen data (synthetic titles when
it is missing) with vectors under their content hashes, as `encode` would (random unit
vectors: no model is loaded), and one user with 10 events. Then times, in the same run:
a warm `recommend()` of 10 items (the baseline), the stale count worked out (rendering
and hashing every item of the domain: what the first call after a change pays), and the
count read back from the database (what every other call pays). Prints the medians and
their ratios to the baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _titles(dataset: Path, n: int) -> list[str]:
    path = dataset / "items.jsonl"
    if not path.is_file():
        return [f"synthetic kitchen item {i}: a pan, a pot or a kettle" for i in range(n)]
    titles = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["domain"] == "kitchen":
                titles.append(row["title"])
            if len(titles) == n:
                break
    return titles


def _median_ms(call: Callable[[], object], runs: int) -> float:
    return 1000 * statistics.median(timeit.repeat(call, number=1, repeat=runs))


def main() -> None:
    sys.path.insert(0, str(REPO))
    from localrec.models.registry import load_registry
    from localrec.recommend.recommender import Recommender
    from localrec.store.db import Store
    from localrec.store.ingest import add_events, add_items
    from localrec.store.item_vectors import content_hash, iter_item_texts, stale_count
    from scripts.food_kitchen import food_kitchen_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=food_kitchen_dir(REPO))
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    spec = load_registry().get(None)
    titles = _titles(args.dataset, args.items)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        with Store(db) as store:
            add_items(
                store,
                [{"id": f"k{i}", "domain": "kitchen", "title": t} for i, t in enumerate(titles)],
            )
            add_events(store, [{"user": "u", "item": f"k{i}", "time": i} for i in range(10)])
            texts = list(iter_item_texts(store))
            rng = np.random.default_rng(0)
            vectors = rng.standard_normal((len(texts), spec.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            hashes = [content_hash(spec.name, spec.document_prefix, t) for _, _, t in texts]
            with store.write() as conn:
                store.put_vectors(conn, spec.name, [i for i, _, _ in texts], hashes, vectors)
            store.pack_matrix(spec.name)

            def worked_out() -> int:
                with store.write() as conn:  # forget the kept count
                    conn.execute("DELETE FROM state WHERE key LIKE 'count:%'")
                return stale_count(store, spec.name, spec.document_prefix, "kitchen")

            def kept() -> int:
                return stale_count(store, spec.name, spec.document_prefix, "kitchen")

            assert worked_out() == 0 and kept() == 0
            with Recommender(db, spec.name) as rec:
                rec.recommend("u", domain="kitchen")  # warm: matrices and caches loaded
                baseline = _median_ms(lambda: rec.recommend("u", domain="kitchen"), args.runs)
            cold = _median_ms(worked_out, args.runs)
            warm = _median_ms(kept, args.runs)
    print(f"{len(titles):,} kitchen items, medians of {args.runs} runs:")
    print(f"  warm recommend() of 10 items (baseline): {baseline:.2f} ms")
    print(f"  stale count worked out: {cold:.1f} ms ({cold / baseline:.1f}x the baseline)")
    print(f"  stale count kept:       {warm:.3f} ms ({warm / baseline:.3f}x the baseline)")


if __name__ == "__main__":
    main()
