"""`localrec pack build` and `localrec pack info`, and a bad --pack refused by `recommend`
in one line that names the file, before the private database is touched."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from localrec.store.db import Store
from tests.helpers import assert_clean, invoke
from tests.packs.corpus import tuned_corpus
from tests.packs.files import BAD_KINDS, BAD_PACKS, bad_pack


@pytest.fixture
def vendor_db(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, pulled_home: Path, model_home: Path
) -> Path:
    """A copy of the tuned corpus database, with the default model in this LOCALREC_HOME."""
    db = tmp_path / "vendor.db"
    shutil.copy(tuned_corpus(tmp_path_factory, pulled_home), db)
    return db


def test_build_then_info(vendor_db: Path, tmp_path: Path, model_home: Path) -> None:
    out = tmp_path / "shop.lrpack"
    built = invoke("--db", str(vendor_db), "pack", "build", "--out", str(out), "--json")
    assert_clean(built, 0)
    summary = json.loads(built.stdout)
    assert summary["path"] == str(out) and summary["bytes"] == out.stat().st_size
    assert (summary["items"], summary["users"]) == (120, 803)
    assert summary["neighbour_pairs"] > 0 and summary["adapter_items"] > 0

    shown = invoke("pack", "info", str(out))
    assert_clean(shown, 0)
    gguf = (model_home / "models" / "all-minilm-l6-v2.gguf").resolve()
    sha = hashlib.sha256(gguf.read_bytes()).hexdigest()
    for line in (
        "format      2 (localrec ",
        "model       all-minilm-l6-v2 (dim 384, int8)",
        f"  gguf sha256 {sha}",
        "privacy     K = 2, N = 100",
        "adapter     kitchen, books",
        "  kitchen              60",
        "  books                60",
        "at least K = 2 distinct users",
    ):
        assert line in shown.stdout, line

    info = invoke("pack", "info", str(out), "--json")
    assert_clean(info, 0)
    data = json.loads(info.stdout)
    assert data["format_version"] == 2
    assert (data["model"], data["model_sha256"]) == ("all-minilm-l6-v2", sha)
    assert (data["min_users"], data["neighbours"]) == (2, 100)
    assert len(data["checksum"]) == 64 and data["checksum"] in shown.stdout
    assert data["items"] == {"kitchen": 60, "books": 60}
    parts = {name for name in data["part_bytes"] if name.startswith("part:")}
    assert set(data["part_bytes"]) - parts == {
        *("adapter", "neighbours", "popularity", "vector_scales", "vectors", "items")
    }
    assert parts <= {"part:cooccurrence", "part:rp3beta"}
    assert data["part_bytes"]["vectors"] == 120 * 384  # int8
    assert data["neighbour_pairs"] == summary["neighbour_pairs"]
    assert "K = 2" in data["reveals"] and "no user ids" in data["reveals"]
    assert data["source"] == "vendor.db" and data["vector_dtype"] == "int8"


def test_build_takes_k_n_and_full_precision(vendor_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "exact.lrpack"
    built = invoke(
        *("--db", str(vendor_db), "pack", "build", "--out", str(out)),
        *("--min-users", "3", "--neighbours", "0", "--full-precision"),
    )
    assert_clean(built, 0)
    assert built.stdout.startswith(f"wrote {out} (") and "from 803 users' events" in built.stdout
    data = json.loads(invoke("pack", "info", str(out), "--json").stdout)
    assert (data["min_users"], data["neighbours"], data["vector_dtype"]) == (3, 0, "float32")
    assert data["part_bytes"]["vectors"] == 120 * 384 * 4
    assert "N = all" in invoke("pack", "info", str(out)).stdout


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_a_bad_pack_stops_recommend_in_one_line(tmp_path: Path, kind: str) -> None:
    bad = bad_pack(tmp_path, kind)
    private = tmp_path / "private.db"
    result = invoke(
        *("--pack", str(bad), "--db", str(private)), "recommend", "someone", "--domain", "kitchen"
    )
    assert_clean(result, 1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert bad.name in lines[0] and BAD_PACKS[kind][1] in lines[0]
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.glob("private.db*")) == []


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_pack_info_refuses_a_bad_pack_in_one_line(tmp_path: Path, kind: str) -> None:
    bad = bad_pack(tmp_path, kind)
    result = invoke("pack", "info", str(bad), "--json")
    assert_clean(result, 1)
    assert result.stdout == "" and bad.name in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def empty_db(tmp_path: Path) -> list[str]:
    db = tmp_path / "empty.db"
    with Store(db):
        pass
    return ["--db", str(db)]


@pytest.mark.parametrize(
    ("where", "says"),
    [
        (lambda tmp: ["--db", str(tmp / "nowhere.db")], "nowhere.db"),
        (lambda tmp: [], "localrec.db"),  # the default database, which does not exist
        (empty_db, "the database has no items to pack"),
    ],
    ids=["missing-db", "no-db-at-all", "db-without-items"],
)
def test_build_without_items_fails_cleanly(
    tmp_path: Path, model_home: Path, where: Callable[[Path], list[str]], says: str
) -> None:
    out = tmp_path / "nothing.lrpack"
    result = invoke(*where(tmp_path), "pack", "build", "--out", str(out))
    assert_clean(result, 1)
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
    assert not list(tmp_path.glob(".nothing.lrpack.*"))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--min-users", "0"], "--min-users"),
        (["--min-users", "-2"], "--min-users"),
        (["--neighbours", "-1"], "--neighbours"),
        (["--min-users", "two"], "--min-users"),
    ],
)
def test_bad_k_or_n_is_a_usage_error(tmp_path: Path, args: list[str], says: str) -> None:
    out = tmp_path / "x.lrpack"
    result = invoke(*empty_db(tmp_path), "pack", "build", "--out", str(out), *args)
    assert_clean(result, 2)
    assert says in result.stderr and not out.exists()


def test_a_dataset_and_a_database_together_is_a_usage_error(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    result = invoke(
        *empty_db(tmp_path), "pack", "build", str(dataset), "--out", str(tmp_path / "x.lrpack")
    )
    assert_clean(result, 2)
    assert "not both" in result.stderr


def test_build_refuses_an_output_directory_that_does_not_exist(tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "dir" / "x.lrpack"
    result = invoke(*empty_db(tmp_path), "pack", "build", "--out", str(out))
    assert_clean(result, 2)
    assert "does not exist" in result.stderr and not out.parent.exists()
