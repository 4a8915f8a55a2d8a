"""Where this project's machines keep the Amazon Food-Kitchen data, and small slices of it.

Used by scripts/demo.py, the benchmarks and the tests; kept out of the localrec package so
that no machine path ships in the wheel. From outside the repository's root directory, put
the root on sys.path first, then `from scripts.food_kitchen import ...`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from localrec.data.dataset import ITEMS_FILE, TEST_FILE, TRAIN_FILES, VALID_FILE

__all__ = ["food_kitchen_dir", "write_slice"]


def food_kitchen_dir(repo: Path | None = None) -> Path:
    """Where the Food-Kitchen data is: $LOCALREC_FOOD_KITCHEN, else ../shared/data next to
    the repository, else /work/shared/data (where this project's machines keep it)."""
    env = os.environ.get("LOCALREC_FOOD_KITCHEN")
    if env:
        return Path(env)
    candidates = [Path("/work/shared/data/amazon-food-kitchen")]
    if repo is not None:
        candidates.insert(0, repo.parent / "shared" / "data" / "amazon-food-kitchen")
    for candidate in candidates:
        if (candidate / ITEMS_FILE).is_file():
            return candidate
    return candidates[0]


def write_slice(
    src: str | Path, dst: str | Path, users: int, *, train_factor: int = 5, extra_items: int = 120
) -> Path:
    """A small dataset in the same layout: the first `users` lines of valid and test, the
    first `users * train_factor` of train_overlap, every item they touch, and the first
    `extra_items` other items of each domain (so there are negatives to rank against)."""
    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    kept: set[int] = set()
    for name, count in (
        (TRAIN_FILES[0], users * train_factor),
        (VALID_FILE, users),
        (TEST_FILE, users),
    ):
        if not (src / name).is_file():
            continue
        with open(src / name, encoding="utf-8") as fh:
            lines = [line.rstrip("\n") for _, line in zip(range(count), fh, strict=False)]
        (dst / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        for line in lines:
            kept.update(int(x) for x in line.split("\t")[1].split(",") if x)
    extra: dict[str, int] = {}
    with (
        open(src / ITEMS_FILE, encoding="utf-8") as fh,
        open(dst / ITEMS_FILE, "w", encoding="utf-8") as out,
    ):
        for line in fh:
            item = json.loads(line)
            domain = str(item["domain"])
            if item["item_id"] in kept:
                out.write(line)
            elif extra.get(domain, 0) < extra_items:
                extra[domain] = extra.get(domain, 0) + 1
                out.write(line)
    return dst
