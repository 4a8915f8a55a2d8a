"""Where this project's machines keep the Amazon Food-Kitchen data, and small slices of it.

Used by scripts/demo.py, the benchmarks and the tests; kept out of the localrec package so
that no machine path ships in the wheel. From outside the repository's root directory, put
the root on sys.path first, then `from scripts.food_kitchen import ...`.

The demo's shop is also committed, gzipped, in scripts/demo_data/food-kitchen-shop (see
its README.md): the demo uses it where the whole data is not on the machine.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from pathlib import Path

from localrec.data.dataset import ITEMS_FILE, TEST_FILE, TRAIN_FILES, VALID_FILE

__all__ = [
    "SHOP_ITEMS",
    "SHOP_SLICE",
    "demo_data",
    "food_kitchen_dir",
    "sequence_counts",
    "unpack_shop_slice",
    "write_popular_slice",
    "write_shop_slice",
    "write_slice",
]

# Where this project's machines keep the data (a copy of shared/ sits at /work/shared).
MACHINE_DATA = Path("/work/shared/data/amazon-food-kitchen")
# The committed slice: the demo's shop (the SHOP_ITEMS most-bought items of each domain and
# every event on them), each file gzipped, with the sha256 of each uncompressed file.
SHOP_SLICE = Path(__file__).resolve().parent / "demo_data" / "food-kitchen-shop"
SHOP_ITEMS = 3000
CHECKSUMS = "SHA256SUMS"


def food_kitchen_dir(repo: Path | None = None) -> Path:
    """Where the Food-Kitchen data is: $LOCALREC_FOOD_KITCHEN, else ../shared/data next to
    the repository, else /work/shared/data (where this project's machines keep it)."""
    env = os.environ.get("LOCALREC_FOOD_KITCHEN")
    if env:
        return Path(env)
    candidates = [MACHINE_DATA]
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


def write_popular_slice(src: str | Path, dst: str | Path, items_per_domain: int) -> Path:
    """A shop of the most-bought items, in the same layout (items.jsonl with the same fields,
    the same sequence files with the same user indexes).

    Kept: the `items_per_domain` items of each domain that the most distinct users of the
    training files had (ties: the lower id). Cut: every other item, with every event on it
    in every file (training files, valid and test); each sequence keeps the rest of its
    items in order, and a sequence left with fewer than two items is dropped. So a valid or
    test user whose last item was cut now has the last kept item as the target, and a
    history may lose all of one domain. `sequence_counts` says how much was left."""
    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    with open(src / ITEMS_FILE, encoding="utf-8") as fh:
        items = [json.loads(line) for line in fh]
    domain_of = {int(item["item_id"]): str(item["domain"]) for item in items}
    users: dict[int, int] = {}
    for name in TRAIN_FILES:
        if (src / name).is_file():
            for sequence in _sequences(src / name).values():
                for item in set(sequence):
                    users[item] = users.get(item, 0) + 1
    kept: set[int] = set()
    for domain in sorted(set(domain_of.values())):
        ranked = sorted(
            (i for i, d in domain_of.items() if d == domain), key=lambda i: (-users.get(i, 0), i)
        )
        kept.update(ranked[:items_per_domain])
    for name in (*TRAIN_FILES, VALID_FILE, TEST_FILE):
        if not (src / name).is_file():
            continue
        lines = []
        for user, sequence in _sequences(src / name).items():
            cut = [i for i in sequence if i in kept]
            if len(cut) >= 2:
                lines.append(f"{user}\t{','.join(map(str, cut))}")
        (dst / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    with open(dst / ITEMS_FILE, "w", encoding="utf-8") as out:
        for item in items:
            if int(item["item_id"]) in kept:
                out.write(json.dumps(item, ensure_ascii=False) + "\n")
    return dst


def sequence_counts(directory: str | Path) -> dict[str, tuple[int, int]]:
    """{file name: (sequences, events)} for each sequence file (training files, valid,
    test) in a dataset directory, and {"items.jsonl": (items, 0)}."""
    directory = Path(directory)
    counts: dict[str, tuple[int, int]] = {}
    for name in (*TRAIN_FILES, VALID_FILE, TEST_FILE):
        if (directory / name).is_file():
            sequences = _sequences(directory / name)
            counts[name] = (len(sequences), sum(map(len, sequences.values())))
    with open(directory / ITEMS_FILE, encoding="utf-8") as fh:
        counts[ITEMS_FILE] = (sum(1 for line in fh if line.strip()), 0)
    return counts


def _sequences(path: Path) -> dict[str, list[int]]:
    """A sequence file as {user index: item ids}, oldest first."""
    out: dict[str, list[int]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            user, _, items = line.rstrip("\n").partition("\t")
            out[user] = [int(x) for x in items.split(",") if x]
    return out


def demo_data(repo: Path, unpack_to: Path, *, use_slice: bool = False) -> tuple[Path, bool]:
    """The demo's data directory, and whether it is the committed shop slice.

    The whole Food-Kitchen data where `food_kitchen_dir` finds it (unless `use_slice`); else
    the committed slice, unpacked (and checked) into `unpack_to`. $LOCALREC_FOOD_KITCHEN
    naming a directory without the data is an error (FileNotFoundError), not a reason to
    fall back: a mistyped path should not silently run the demo on other data."""
    if not use_slice:
        full = food_kitchen_dir(repo)
        if (full / ITEMS_FILE).is_file():
            return full, False
        env = os.environ.get("LOCALREC_FOOD_KITCHEN")
        if env:
            raise FileNotFoundError(
                f"$LOCALREC_FOOD_KITCHEN is {env}, which has no {ITEMS_FILE}: point it at the "
                "Food-Kitchen data, or unset it to run on the demo's committed slice"
            )
    return unpack_shop_slice(unpack_to), True


def write_shop_slice(src: str | Path, dst: str | Path = SHOP_SLICE) -> Path:
    """Cut the demo's shop from the whole data (`write_popular_slice` with SHOP_ITEMS) and
    write each file gzipped into `dst`, with SHA256SUMS of the uncompressed files. The same
    data gives the same uncompressed bytes; the gzip files carry no name and no time."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    sums = []
    with tempfile.TemporaryDirectory() as tmp:
        shop = write_popular_slice(src, Path(tmp) / "shop", SHOP_ITEMS)
        for path in sorted(shop.iterdir()):
            data = path.read_bytes()
            sums.append(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")
            with (
                open(dst / f"{path.name}.gz", "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
            ):
                gz.write(data)
    (dst / CHECKSUMS).write_text("".join(sums), encoding="utf-8")
    return dst


def unpack_shop_slice(dst: str | Path, src: Path = SHOP_SLICE) -> Path:
    """The committed shop slice, uncompressed into `dst` (a dataset directory that
    `localrec.data.dataset.load_dataset` reads). Each file must match its sha256 in
    SHA256SUMS (ValueError otherwise), and nothing but those files is written."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for line in (src / CHECKSUMS).read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        with gzip.open(src / f"{name}.gz", "rb") as gz:
            data = gz.read()
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"{src / name}.gz does not match its sha256 in {src / CHECKSUMS}")
        partial = dst / f".{name}.partial"
        partial.write_bytes(data)
        partial.replace(dst / name)
    return dst
