"""The demo's committed shop slice (scripts/demo_data/food-kitchen-shop) and how the demo
chooses between it and the whole Food-Kitchen data (scripts/food_kitchen.demo_data)."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import scripts.food_kitchen
from localrec.data.dataset import ITEMS_FILE, TEST_FILE, TRAIN_FILES, VALID_FILE, load_dataset
from scripts.food_kitchen import (
    SHOP_ITEMS,
    SHOP_SLICE,
    demo_data,
    sequence_counts,
    unpack_shop_slice,
    write_popular_slice,
    write_shop_slice,
)
from tests.conftest import REPO, require_data
from tests.data.test_dataset import write_dataset

FILES = (ITEMS_FILE, *TRAIN_FILES, VALID_FILE, TEST_FILE)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack_shop_slice(tmp_path_factory.mktemp("slice") / "shop")


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Food-Kitchen data anywhere the demo looks: a repository with no ../shared beside
    it, no machine copy and no $LOCALREC_FOOD_KITCHEN. Returns that repository."""
    monkeypatch.delenv("LOCALREC_FOOD_KITCHEN", raising=False)
    monkeypatch.setattr(scripts.food_kitchen, "MACHINE_DATA", tmp_path / "no-machine-copy")
    return tmp_path / "repo"


def test_the_committed_slice_is_small_and_only_data() -> None:
    files = sorted(p.name for p in SHOP_SLICE.iterdir())
    assert files == sorted([*(f"{name}.gz" for name in FILES), "SHA256SUMS"])
    assert sum(p.stat().st_size for p in SHOP_SLICE.iterdir()) <= 2_000_000
    assert (SHOP_SLICE.parent / "README.md").is_file()


def test_the_slice_unpacks_to_its_checksums(shop: Path) -> None:
    lines = (SHOP_SLICE / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    sums = {name: digest for digest, name in (line.split("  ", 1) for line in lines)}
    assert sorted(sums) == sorted(FILES)
    assert sorted(p.name for p in shop.iterdir()) == sorted(FILES)
    for name, digest in sums.items():
        assert hashlib.sha256((shop / name).read_bytes()).hexdigest() == digest, name


def test_the_slice_is_the_demos_shop_in_the_datasets_format(shop: Path) -> None:
    items = [json.loads(line) for line in (shop / ITEMS_FILE).read_text("utf-8").splitlines()]
    assert {tuple(sorted(item)) for item in items} == {("asin", "domain", "item_id", "title")}
    dataset = load_dataset(shop)
    assert dataset.domain_names == ("food", "kitchen")
    assert [len(dataset.items_of_domain(d)) for d in range(2)] == [SHOP_ITEMS, SHOP_ITEMS]
    # The ids of the whole data: food ids are below 8,661, kitchen ids from there on.
    food = dataset.item_ids[dataset.domains == dataset.domain_index("food")]
    assert food.max() < 8661 <= dataset.item_ids[dataset.domains == 1].min()
    assert sequence_counts(shop) == {
        "train_overlap.txt": (7356, 58231),
        "train_A.txt": (5259, 26234),
        "train_B.txt": (31798, 121856),
        "valid.txt": (953, 11593),
        "test.txt": (921, 8247),
        "items.jsonl": (6000, 0),
    }
    assert min(map(len, dataset.test)) >= 2 and np.all(dataset.item_ids >= 0)


def test_the_demos_cut_of_the_slice_is_the_slice(shop: Path, tmp_path: Path) -> None:
    """So the demo shows the same on the slice as on the whole data."""
    cut = write_popular_slice(shop, tmp_path / "cut", SHOP_ITEMS)
    for name in FILES:
        assert (cut / name).read_bytes() == (shop / name).read_bytes(), name


def test_a_damaged_slice_file_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "slice"
    shutil.copytree(SHOP_SLICE, src)
    with gzip.open(src / "test.txt.gz", "wb") as gz:
        gz.write(b"1\t1,2\n")
    with pytest.raises(ValueError, match=r"test\.txt\.gz does not match its sha256"):
        unpack_shop_slice(tmp_path / "out", src)
    assert not (tmp_path / "out" / TEST_FILE).exists()


def test_without_the_whole_data_the_demo_uses_the_slice(nowhere: Path, tmp_path: Path) -> None:
    data, is_slice = demo_data(nowhere, tmp_path / "unpacked")
    assert is_slice and data == tmp_path / "unpacked"
    assert load_dataset(data).n_items == 2 * SHOP_ITEMS


@pytest.mark.parametrize("where", ["beside the repository", "LOCALREC_FOOD_KITCHEN"])
def test_the_whole_data_comes_first_where_it_is(
    where: str, nowhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if where == "LOCALREC_FOOD_KITCHEN":
        full = write_dataset(tmp_path / "elsewhere", {})
        monkeypatch.setenv("LOCALREC_FOOD_KITCHEN", str(full))
    else:
        full = write_dataset(nowhere.parent / "shared" / "data" / "amazon-food-kitchen", {})
    assert demo_data(nowhere, tmp_path / "unpacked") == (full, False)
    assert not (tmp_path / "unpacked").exists()
    assert demo_data(nowhere, tmp_path / "unpacked", use_slice=True) == (
        tmp_path / "unpacked",
        True,
    )


def test_a_data_variable_naming_no_data_is_an_error(
    nowhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALREC_FOOD_KITCHEN", str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match=r"LOCALREC_FOOD_KITCHEN is .*typo.*unset it"):
        demo_data(nowhere, tmp_path / "unpacked")
    assert not (tmp_path / "unpacked").exists()


def test_the_slice_is_cut_anew_from_the_whole_data_to_the_same_bytes(tmp_path: Path) -> None:
    out = write_shop_slice(require_data(), tmp_path / "anew")
    assert (out / "SHA256SUMS").read_bytes() == (SHOP_SLICE / "SHA256SUMS").read_bytes()
    assert SHOP_SLICE.is_relative_to(REPO / "scripts")
