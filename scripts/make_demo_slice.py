"""Regenerate the demo's committed shop slice (scripts/demo_data/food-kitchen-shop).

    python scripts/make_demo_slice.py [FOOD_KITCHEN_DIR]

Reads the whole Amazon Food-Kitchen data (default: where scripts/food_kitchen.py finds it),
cuts the demo's shop from it (the 3,000 items of each domain that the most distinct
training users had, and every event on them: `write_popular_slice`), and writes each file
gzipped, with the sha256 of each uncompressed file in SHA256SUMS. The same data gives the
same SHA256SUMS; `git diff` after a run shows whether anything changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.food_kitchen import SHOP_SLICE, food_kitchen_dir, write_shop_slice  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", type=Path, default=food_kitchen_dir(REPO))
    args = parser.parse_args()
    out = write_shop_slice(args.data, SHOP_SLICE)
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} from {args.data}: {total:,} bytes")


if __name__ == "__main__":
    main()
