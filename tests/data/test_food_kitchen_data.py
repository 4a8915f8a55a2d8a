"""The Food-Kitchen helpers outside the package (scripts/food_kitchen.py), and tests on the
real data failing rather than skipping in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.conftest
from localrec.data.dataset import load_dataset
from scripts.food_kitchen import food_kitchen_dir, write_slice
from tests.conftest import REPO, require_data
from tests.data.test_dataset import write_dataset


def test_the_package_names_no_machine_path() -> None:
    """Where the data lives on this project's machines stays out of the wheel."""
    for path in sorted((REPO / "localrec").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".toml", ".json", ".txt"):
            text = path.read_text(encoding="utf-8")
            assert "/work/" not in text and "shared/data" not in text, path


def test_the_environment_variable_names_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALREC_FOOD_KITCHEN", str(tmp_path / "anywhere"))
    assert food_kitchen_dir(tmp_path / "repo") == tmp_path / "anywhere"


def test_the_data_next_to_the_repository_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOCALREC_FOOD_KITCHEN", raising=False)
    beside = write_dataset(tmp_path / "shared" / "data" / "amazon-food-kitchen", {})
    assert food_kitchen_dir(tmp_path / "repo") == beside


def test_a_slice_keeps_the_first_users_what_they_touch_and_extra_items(tmp_path: Path) -> None:
    items = [{"item_id": n, "domain": "food" if n < 10 else "kitchen"} for n in range(20)]
    src = write_dataset(
        tmp_path / "full",
        {
            "train_overlap.txt": "".join(f"{u}\t{u},{10 + u}\n" for u in range(8)),
            "valid.txt": "0\t1,11\n1\t2,12\n2\t3,13\n",
            "test.txt": "0\t1,11,4\n1\t2,12,5\n2\t3,13,6\n",
        },
        [{**item, "title": f"item {item['item_id']}"} for item in items],
    )
    dst = write_slice(src, tmp_path / "slice", users=1, train_factor=2, extra_items=1)
    assert (dst / "train_overlap.txt").read_text() == "0\t0,10\n1\t1,11\n"
    assert (dst / "valid.txt").read_text() == "0\t1,11\n"
    assert (dst / "test.txt").read_text() == "0\t1,11,4\n"
    sliced = load_dataset(dst)
    # Items of the kept lines (0, 1, 4, 10, 11), then the first other item of each domain.
    assert sorted(sliced.item_ids.tolist()) == [0, 1, 2, 4, 10, 11, 12]
    assert sliced.domain_names == ("food", "kitchen")


@pytest.mark.parametrize(
    ("ci", "outcome"),
    [
        (None, "skip"),
        ("", "skip"),
        ("false", "skip"),
        ("0", "skip"),
        ("1", "fail"),
        ("true", "fail"),
    ],
)
def test_missing_data_skips_except_in_ci(
    ci: str | None, outcome: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tests.conftest, "DATA_DIR", tmp_path / "no-data")
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected, match="Food-Kitchen data not found") as raised:
        require_data()
    assert type(raised.value) is expected
    assert ("CI is set" in str(raised.value)) == (outcome == "fail")


def test_present_data_is_returned_in_ci_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_dataset(tmp_path / "fk", {})
    monkeypatch.setattr(tests.conftest, "DATA_DIR", data)
    monkeypatch.setenv("CI", "1")
    assert require_data() == data
