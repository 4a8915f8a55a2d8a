"""Serving from a pack against serving from one database, on Food-Kitchen, in one run.

    LOCALREC_HOME=/tmp/lrhome .venv/bin/python benchmarks/bench_pack.py \\
        [DATASET_DIR] [--work DIR] [--runs 7] [--users 50]

Needs `localrec tune DATASET_DIR` first (the vectors and adapter in the dataset's cache)
and the default model on disk. `--work DIR` keeps what it builds (the pack, and the
database-served baseline: the catalogue, its vectors, the adapter and every training
user's events, as an app had to ship before packs) for later runs.

Every figure is a median of repeated runs after one warm-up; every ratio is against the
database-served baseline measured in the same run. It prints:

1. the pack's size (default K and N) against the database's;
2. `localrec --pack P --db me.db recommend USER --domain kitchen` as a whole process
   (python start, imports, pack read and check, scoring), against the same command on the
   database (`localrec --db app.db recommend USER ...`), with `localrec --version` and a
   process that only imports what `recommend` needs, for scale;
3. a warm `Recommender.recommend(USER, domain=..., k=10)`, one process, pack against
   database, over `--users` test users whose histories are stored;
4. `record()` of one event followed by `recommend()` of the same user (from the pack);
5. the peak RSS of a device process serving from the pack with the model loaded (an
   ad-hoc text history makes it load), against the same on the database.

Goals (the pack issue): pack <= 40 MB; cold CLI <= 0.6 s; warm <= 1.2x the database's;
device peak RSS <= 250 MB. Exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.food_kitchen import food_kitchen_dir

REPO = Path(__file__).resolve().parent.parent
# VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's size when forked
# (Linux keeps the forked copy's high-water mark across exec), so a big benchmark parent
# would be measured instead of the device process.
RSS_CODE = """
import sys, json
from localrec.recommend.recommender import Recommender
db, pack = sys.argv[1], sys.argv[2] or None
with Recommender(db, pack=pack) as rec:
    rec.recommend("test-1", domain="kitchen", k=10)
    rec.recommend(history="organic green tea; baby formula", domain="kitchen", k=10)
status = open("/proc/self/status").read()
peak_kb = int(status.split("VmHWM:")[1].split()[0])
print(json.dumps({"peak_rss_mb": peak_kb / 1024}))
"""


def median_time(fn: object, runs: int) -> float:
    assert callable(fn)
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(work: Path, dataset_dir: Path, users: int) -> tuple[Path, Path, Path]:
    """The pack, the database-served baseline and the device's private database."""
    from localrec.data.dataset import load_dataset
    from localrec.data.loading import dataset_with_store
    from localrec.packs.build import build_pack
    from localrec.store.db import Store
    from localrec.store.ingest import add_events
    from localrec.tuning.storage import load_adapter, store_adapter

    work.mkdir(parents=True, exist_ok=True)
    pack, app, device = work / "fk.lrpack", work / "app.db", work / "me.db"
    if not pack.exists():
        build_pack(pack, dataset_dir=dataset_dir)
    dataset = load_dataset(dataset_dir)
    histories = [
        {"user": f"test-{n}", "item": str(int(i)), "action": "purchase", "time": t}
        for n, seq in enumerate(dataset.test[:users], start=1)
        for t, i in enumerate(seq[:-1])
    ]
    if not app.exists():
        _, cache, _ = dataset_with_store(dataset_dir)
        with cache, Store(app) as store:
            from localrec.data.importer import import_dataset

            train = {f"train:{n}" for n in range(1, len(dataset.train) + 1)}
            import_dataset(store, dataset, users=train)
            add_events(store, histories)
            matrix = cache.item_matrix("all-minilm-l6-v2")
            hashes = cache.vector_hashes("all-minilm-l6-v2")
            with store.write() as conn:
                store.put_vectors(
                    conn, matrix.model, matrix.ids, [hashes[i] for i in matrix.ids], matrix.matrix
                )
            store.pack_matrix(matrix.model)
            adapter = load_adapter(cache, matrix.model)
            assert adapter is not None, "run `localrec tune DATASET_DIR` first"
            store_adapter(store, adapter)
    if not device.exists():
        with Store(device) as store:
            add_events(store, histories, known_items={str(i) for i in range(dataset.n_items)})
    return pack, app, device


def cli_seconds(args: list[str], runs: int) -> float:
    command = [sys.executable, "-m", "localrec", *args]

    def once() -> None:
        subprocess.run(command, check=True, capture_output=True, cwd=REPO)

    return median_time(once, runs)


def main() -> int:
    from localrec.recommend.recommender import Recommender

    pack, app, device = build(ARGS.work, ARGS.dataset, ARGS.users)
    goals: list[tuple[str, bool]] = []
    size, app_size = pack.stat().st_size / 1e6, app.stat().st_size / 1e6
    print(f"pack {size:.1f} MB (database-served: {app_size:.1f} MB, {size / app_size:.2f}x)")
    goals.append(("pack <= 40 MB", size <= 40))

    command = ["recommend", "test-1", "--domain", "kitchen", "-k", "10"]
    cold_pack = cli_seconds(["--pack", str(pack), "--db", str(device), *command], ARGS.runs)
    cold_db = cli_seconds(["--db", str(app), *command], ARGS.runs)
    bare = cli_seconds(["--version"], ARGS.runs)
    imports = median_time(
        lambda: subprocess.run(
            [sys.executable, "-c", "import localrec.cli.main, localrec.recommend.recommender"],
            check=True,
            cwd=REPO,
        ),
        ARGS.runs,
    )
    print(
        f"cold CLI recommend: pack {cold_pack:.3f} s, database {cold_db:.3f} s "
        f"({cold_pack / cold_db:.2f}x); `localrec --version` {bare:.3f} s; the imports "
        f"recommend needs (numpy, scipy.sparse, localrec) {imports:.3f} s"
    )
    goals.append(("cold CLI from the pack <= 0.6 s", cold_pack <= 0.6))

    users = [f"test-{n}" for n in range(1, ARGS.users + 1)]
    warm = {}
    for name, rec in (
        ("pack", Recommender(device, pack=pack)),
        ("database", Recommender(app)),
    ):
        with rec:

            def all_users(r: Recommender = rec) -> None:
                for user in users:
                    r.recommend(user, domain="kitchen", k=10)

            warm[name] = median_time(all_users, ARGS.runs) / len(users)
    ratio = warm["pack"] / warm["database"]
    print(
        f"warm recommend(): pack {1000 * warm['pack']:.1f} ms, database "
        f"{1000 * warm['database']:.1f} ms ({ratio:.2f}x)"
    )
    goals.append(("warm from the pack <= 1.2x the database's", ratio <= 1.2))

    with Recommender(device, pack=pack) as rec:
        rec.recommend("test-1", domain="kitchen", k=10)
        items = iter(range(10_000, 20_000))

        def record_and_recommend() -> None:
            rec.record("bench-user", str(next(items)), action="purchase")
            rec.recommend("bench-user", domain="kitchen", k=10)

        both = median_time(record_and_recommend, ARGS.runs)
    rec_ms = 1000 * both
    print(f"record() + recommend() of that user from the pack: {rec_ms:.1f} ms")
    with Recommender(device, pack=pack) as rec:
        rec.store.forget_user("bench-user")

    rss = {}
    for name, db, packed in (("pack", device, str(pack)), ("database", app, "")):
        out = subprocess.run(
            [sys.executable, "-c", RSS_CODE, str(db), packed],
            check=True,
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        rss[name] = json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    print(
        f"peak RSS, model loaded: pack {rss['pack']:.0f} MB, database {rss['database']:.0f} MB "
        f"({rss['pack'] / rss['database']:.2f}x)"
    )
    goals.append(("device peak RSS <= 250 MB", rss["pack"] <= 250))

    print("\ngoals")
    for goal, met in goals:
        print(f"  {'met ' if met else 'MISSED'}  {goal}")
    return 0 if all(met for _, met in goals) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=food_kitchen_dir(REPO))
    default_work = Path(os.environ.get("TMPDIR", "/tmp")) / "bench-pack"
    parser.add_argument("--work", type=Path, default=default_work)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--users", type=int, default=50)
    ARGS = parser.parse_args()
    sys.exit(main())
