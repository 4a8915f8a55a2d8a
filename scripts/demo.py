"""The localrec demo on real data: Food histories in, Kitchen recommendations out.

Run by `scripts/demo` (which installs localrec first). Steps, each a real `localrec`
command whose output is shown:

1. get the default model (`localrec models pull`: the hub, or the offline build);
2. cut a documented slice of the Amazon Food-Kitchen data (see --users): the first
   USERS test and validation users, 5 x USERS training users, every item they touch and
   120 more items per domain;
3. load it into a database: the items, the training users' sequences as events, and,
   for three test users, only their Food events (people new to Kitchen);
4. encode the catalogue and learn the on-device adapter from the training users' events
   (`localrec tune`);
5. for those three users print their Food history and the Kitchen items localrec
   recommends (the default `hybrid`: the adapter blended with item-kNN), with scores and
   the history items behind them, and their actual next Kitchen item;
6. tune on the slice's training files and evaluate the slice (`localrec eval`): every
   baseline, the zero-shot user representations, and the tuned model and hybrid; with
   --full, the same on the whole dataset (the README's results table).

The slice is small (500 training users), so item-kNN and the adapter have little to learn
from; `tune` keeps an adapter only for a domain where it beats zero-shot text on the
validation split, and says so when it does not.

Everything runs on this machine; the only network use is the model download in step 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

# This checkout's localrec and scripts, however the demo is started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.food_kitchen import food_kitchen_dir, write_slice

REPO = Path(__file__).resolve().parent.parent
DATA = food_kitchen_dir(REPO)


def localrec(*args: str, capture: bool = False, may_refuse: bool = False) -> str:
    print(f"\n$ localrec {' '.join(shlex.quote(a) for a in args)}", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "localrec", *args],
        text=True,
        check=False,
        stdout=subprocess.PIPE if capture else None,
    )
    if result.returncode == 1 and may_refuse:
        print("(refused, as shown: zero-shot text serves instead)", flush=True)
    elif result.returncode != 0:
        raise SystemExit(f"localrec {args[0]} failed with exit code {result.returncode}")
    return result.stdout or ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100, help="Test users in the slice.")
    parser.add_argument("--show", type=int, default=3, help="Users to show recommendations for.")
    parser.add_argument(
        "--full",
        action="store_true",
        help="Also tune and evaluate on the whole dataset (encodes 36k titles: ~10 min here).",
    )
    args = parser.parse_args()
    from localrec.data.dataset import load_dataset
    from localrec.store.db import Store
    from localrec.store.ingest import add_events, add_items

    if not (DATA / "items.jsonl").exists():
        raise SystemExit(f"the Food-Kitchen data is not at {DATA}; set LOCALREC_FOOD_KITCHEN")
    home = Path(os.environ.setdefault("LOCALREC_HOME", str(REPO / "demo-home")))
    start = time.perf_counter()
    localrec("models", "pull")

    slice_dir = write_slice(DATA, home / "food-kitchen-slice", args.users)
    dataset = load_dataset(slice_dir)
    print(
        f"\nslice: {dataset.n_items} items, {len(dataset.train)} training users, "
        f"{len(dataset.test)} test users, from {DATA}"
    )

    db = home / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    food = dataset.domain_index("food")
    shown: list[tuple[str, list[int], int]] = []
    for sequence in dataset.test:
        history, target = sequence[:-1], int(sequence[-1])
        food_history = [int(i) for i in history if dataset.domains[i] == food]
        if dataset.domains[target] != food and len(food_history) >= 3:
            shown.append((f"shopper-{len(shown) + 1}", food_history, target))
        if len(shown) == args.show:
            break
    with Store(db) as store:
        add_items(
            store,
            (
                {
                    "id": str(int(dataset.item_ids[i])),
                    "domain": dataset.domain_names[dataset.domains[i]],
                    "title": dataset.titles[i],
                }
                for i in range(dataset.n_items)
            ),
        )
        add_events(
            store,
            (
                {"user": f"train-{n}", "item": str(int(dataset.item_ids[i])), "time": t}
                for n, seq in enumerate(dataset.train)
                for t, i in enumerate(seq)
            ),
        )
        add_events(
            store,
            (
                {"user": user, "item": str(int(dataset.item_ids[i])), "time": t}
                for user, history, _ in shown
                for t, i in enumerate(history)
            ),
        )
    localrec("--db", str(db), "stats")
    localrec("--db", str(db), "encode")
    # On a small slice the learned adapter may not beat zero-shot text on validation;
    # tune then says so and keeps nothing, and recommend serves zero-shot text.
    localrec("--db", str(db), "tune", may_refuse=True)

    for user, food_history, target in shown:
        print(f"\n=== {user}: Food history (oldest first), no Kitchen history at all ===")
        for i in food_history[-8:]:
            print(f"  - {dataset.titles[i][:90]}")
        out = localrec(
            "--db",
            str(db),
            "recommend",
            user,
            "--domain",
            "kitchen",
            "-k",
            "5",
            "--explain",
            "--json",
            capture=True,
        )
        for rank, rec in enumerate(json.loads(out), start=1):
            print(f"  {rank}. {rec['title'][:70]}  (score {rec['score']:.3f})")
            for why in rec["because_detail"][:2]:
                title, value = why["title"][:55], why["similarity"]
                if why["reason"] == "similar text":
                    print(f"    because you bought {title} (similar text, {value:.2f})")
                else:  # the share of the item's collaborative score
                    print(f"    because you bought {title}: {why['reason']} ({value:.0%})")
        print(f"  their actual next Kitchen item: {dataset.titles[target][:80]}")

    negatives = min(999, min(len(dataset.items_of_domain(d)) for d in range(dataset.n_domains)) - 1)
    localrec("tune", str(slice_dir), may_refuse=True)
    localrec("eval", str(slice_dir), "--negatives", str(negatives))
    if args.full:
        localrec("tune", str(DATA))
        localrec("eval", str(DATA))
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; files are in {home}")


if __name__ == "__main__":
    main()
