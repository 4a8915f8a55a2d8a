from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localrec.data.dataset import SequenceDataset, load_dataset
from localrec.errors import DatasetError
from tests.conftest import require_data

ITEMS: list[dict[str, Any]] = [
    # Ids deliberately sparse and unsorted: indices must follow file order, not id order.
    {"item_id": 100, "domain": "food", "title": "Salt &amp; Pepper\tGrinder"},
    {"item_id": 7, "domain": "kitchen", "title": "  Chef's   Knife\n", "attributes": "steel"},
    {"item_id": 42, "domain": "food", "title": "Green Tea", "attributes": ["loose", "organic"]},
    {"item_id": 3, "domain": "kitchen", "title": "Kettle", "attributes": {"colour": "red"}},
]


def write_dataset(root: Path, files: dict[str, str], items: list[dict[str, Any]] = ITEMS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "items.jsonl").write_text(
        "".join(json.dumps(item) + "\n" for item in items), encoding="utf-8"
    )
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def small(tmp_path: Path) -> SequenceDataset:
    root = write_dataset(
        tmp_path / "ds",
        {
            "train_overlap.txt": "1\t100,7,42\n",
            "train_B.txt": "1\t7,3\n2\t3,7\n",
            "train_A.txt": "1\t42,100\n",
            "valid.txt": "1\t100,3\n",
            "test.txt": "1\t42,7,3\n\n2\t3\n",
        },
    )
    return load_dataset(root)


def test_items_get_dense_indices_in_file_order(small: SequenceDataset) -> None:
    assert small.item_ids.tolist() == [100, 7, 42, 3]
    assert small.item_ids.dtype == np.int64
    assert small.domain_names == ("food", "kitchen")
    assert small.domains.tolist() == [0, 1, 0, 1]
    assert small.items_of_domain(0).tolist() == [0, 2]
    assert small.items_of_domain(1).tolist() == [1, 3]
    assert small.domain_position([0, 1, 2, 3]).tolist() == [0, 0, 1, 1]
    assert small.domain_index("kitchen") == 1


def test_titles_are_unescaped_and_whitespace_collapsed(small: SequenceDataset) -> None:
    assert small.titles == ["Salt & Pepper Grinder", "Chef's Knife", "Green Tea", "Kettle"]
    assert small.attributes == ["", "steel", "loose; organic", "colour: red"]
    assert small.item_text(0) == "Salt & Pepper Grinder"
    assert small.item_text(1) == "Chef's Knife. steel"


def test_sequences_map_ids_and_train_files_concatenate_in_order(small: SequenceDataset) -> None:
    # train_overlap, then train_A, then train_B, whatever order they were written in.
    assert [s.tolist() for s in small.train] == [[0, 1, 2], [2, 0], [1, 3], [3, 1]]
    assert small.train_files == ("train_overlap.txt", "train_A.txt", "train_B.txt")
    assert [s.tolist() for s in small.valid] == [[0, 3]]
    # The blank line is skipped; a target-only line is a case with an empty history.
    assert [s.tolist() for s in small.test] == [[2, 1, 3], [3]]
    assert all(s.dtype == np.int32 for s in small.train + small.valid + small.test)


def test_optional_files_may_be_missing(tmp_path: Path) -> None:
    ds = load_dataset(
        write_dataset(tmp_path / "ds", {"train_B.txt": "1\t7,3\n", "test.txt": "1\t7,3\n"})
    )
    assert ds.train_files == ("train_B.txt",)
    assert [s.tolist() for s in ds.train] == [[1, 3]]
    assert ds.valid == []


def test_unknown_domain_index_is_an_error(small: SequenceDataset) -> None:
    with pytest.raises(DatasetError, match="no domain 2"):
        small.items_of_domain(2)
    with pytest.raises(DatasetError, match="no domain 'books'"):
        small.domain_index("books")


@pytest.mark.parametrize(
    ("test_txt", "line", "fragment"),
    [
        ("1\t100,7\n2\t100,999,7\n", 2, "item id 999 is not in items.jsonl"),
        ("1\t100,7\n2 100,7\n", 2, "expected '<user_index><TAB>"),
        ("1\t100,7\n2\t\n", 2, "expected '<user_index><TAB>"),
        ("1\t100,7\n\n3\t100,x7\n", 3, "item id 'x7' is not a 64-bit integer"),
        ("1\t100,,7\n", 1, "item id '' is not a 64-bit integer"),
        ("1\t100,99999999999999999999\n", 1, "is not a 64-bit integer"),
    ],
)
def test_bad_sequence_lines_name_file_and_line(
    tmp_path: Path, test_txt: str, line: int, fragment: str
) -> None:
    root = write_dataset(tmp_path / "ds", {"test.txt": test_txt})
    with pytest.raises(DatasetError) as info:
        load_dataset(root)
    message = str(info.value)
    assert f"{root / 'test.txt'}:{line}:" in message
    assert fragment in message


def test_unknown_id_in_a_train_file_names_that_file(tmp_path: Path) -> None:
    root = write_dataset(
        tmp_path / "ds", {"train_A.txt": "1\t100\n2\t42,5\n", "test.txt": "1\t7\n"}
    )
    with pytest.raises(DatasetError, match=r"train_A\.txt:2: item id 5 is not in items\.jsonl"):
        load_dataset(root)


@pytest.mark.parametrize("missing", ["items.jsonl", "test.txt"])
def test_missing_required_file(tmp_path: Path, missing: str) -> None:
    root = write_dataset(tmp_path / "ds", {"test.txt": "1\t100,7\n"})
    (root / missing).unlink()
    with pytest.raises(DatasetError, match=f"{missing}: missing"):
        load_dataset(root)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a directory"):
        load_dataset(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("items_text", "fragment"),
    [
        (
            '{"item_id": 1, "domain": "a", "title": "x"}\n{"item_id": 1',
            "items.jsonl:2: not valid JSON",
        ),
        (
            '{"item_id": "1", "domain": "a", "title": "x"}\n',
            "items.jsonl:1: 'item_id' must be an integer",
        ),
        ('{"item_id": 1, "title": "x"}\n', "items.jsonl:1: 'domain' must be a non-empty string"),
        ('{"item_id": 1, "domain": "a"}\n', "items.jsonl:1: 'title' must be a string"),
        ("[1, 2]\n", "items.jsonl:1: expected a JSON object"),
        (
            '{"item_id": 1, "domain": "a", "title": "x"}\n'
            '{"item_id": 1, "domain": "a", "title": "y"}\n',
            "item_id 1 appears more than once",
        ),
        ("\n", "no items"),
    ],
)
def test_bad_items_file(tmp_path: Path, items_text: str, fragment: str) -> None:
    root = write_dataset(tmp_path / "ds", {"test.txt": "1\t1\n"})
    (root / "items.jsonl").write_text(items_text, encoding="utf-8")
    with pytest.raises(DatasetError, match=fragment.replace("(", r"\(")):
        load_dataset(root)


def test_empty_test_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"test\.txt: no sequences"):
        load_dataset(write_dataset(tmp_path / "ds", {"test.txt": "\n"}))


def test_real_food_kitchen_loads_fast_and_matches_its_readme() -> None:
    data = require_data()
    start = time.perf_counter()
    ds = load_dataset(data)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0
    assert ds.n_items == 36298
    assert np.array_equal(ds.item_ids, np.arange(36298))
    assert ds.domain_names == ("food", "kitchen")
    assert len(ds.items_of_domain(0)) == 8661
    assert len(ds.items_of_domain(1)) == 27637
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (7501 + 5472 + 38191, 960, 937)
    # README counts: test interactions incl. targets, per domain.
    test_items = np.concatenate(ds.test)
    assert np.bincount(ds.domains[test_items]).tolist() == [6447, 9279]
    targets = np.array([s[-1] for s in ds.test])
    assert np.bincount(ds.domains[targets]).tolist() == [300, 637]
    assert not any("&amp;" in t or "\t" in t or "\n" in t for t in ds.titles)
    assert set(ds.attributes) == {""}
