"""The CLI when the environment gets in the way: a read-only directory or file, a damaged
page, a full disk. Each ends in one line naming the file and what to do, exit 1, no
traceback, and the database as it was; reading works from a read-only directory."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from localrec.store.db import Store
from localrec.store.ingest import add_items
from tests.helpers import (
    assert_clean,
    catalogue_db,
    catalogue_events,
    catalogue_items,
    count,
    file_digest,
    invoke,
    read_only,
    subprocess_env,
    write_jsonl,
)
from tests.store.test_environment_errors import damage_page

READS: tuple[tuple[str, ...], ...] = (
    ("stats",),
    ("similar", "k000", "-k", "3"),
    ("recommend", "USER", "--domain", "books", "-k", "3"),
)
WRITES: tuple[tuple[str, ...], ...] = (
    ("add", "events", "EVENTS"),
    ("config", "set", "template.kitchen", "{title}"),
    ("forget", "USER", "--yes"),
    ("encode", "--force"),
)


@pytest.fixture
def app(tmp_path: Path, model_home: Path, encoder: Any) -> tuple[Path, str, Path]:
    """A database in its own directory, encoded with the real model; a user of it; and an
    events file outside that directory."""
    events = catalogue_events(users=30, patterns=6)
    db = catalogue_db(tmp_path / "data" / "app.db", events, encoder)
    more = write_jsonl(tmp_path / "more.jsonl", [{"user": "zed", "item": "k001"}])
    return db, str(events[0]["user"]), more


def _args(command: tuple[str, ...], db: Path, user: str, events: Path) -> list[str]:
    swap = {"USER": user, "EVENTS": str(events)}
    return ["--db", str(db), *(swap.get(part, part) for part in command)]


def test_a_read_only_directory_reads_and_refuses_writes(app: tuple[Path, str, Path]) -> None:
    db, user, events = app
    before = file_digest(db)
    with read_only(db.parent):
        for command in READS:
            result = invoke(*_args(command, db, user, events))
            assert_clean(result, 0)
        for command in WRITES:
            result = invoke(*_args(command, db, user, events))
            assert_clean(result, 1)
            assert f"{db}: cannot write: its directory" in result.stderr, command
            assert len(result.stderr.strip().splitlines()) == 1
    assert file_digest(db) == before


def test_a_read_only_file_refuses_every_write(app: tuple[Path, str, Path]) -> None:
    db, user, events = app
    before = file_digest(db)
    with read_only(db):
        for command in WRITES:
            result = invoke(*_args(command, db, user, events))
            assert_clean(result, 1)
            assert f"{db}: cannot write: the file or its directory" in result.stderr, command
            assert "Make both writable" in result.stderr
    assert file_digest(db) == before


def test_a_damaged_page_is_one_line_for_reads_and_writes(app: tuple[Path, str, Path]) -> None:
    db, user, events = app
    damage_page(db, "items")
    before = file_digest(db)
    for command in (*READS, *WRITES):
        result = invoke(*_args(command, db, user, events))
        assert_clean(result, 1)
        assert f"{db}: the database file is damaged" in result.stderr, command
    assert file_digest(db) == before


def test_a_full_disk_stores_nothing_and_says_so(tmp_path: Path) -> None:
    """`add items` under a file-size limit just above the database (RLIMIT_FSIZE, set in
    the child): one line, exit 1, and the database keeps exactly what it had."""
    db = tmp_path / "df.db"
    with Store(db) as store:
        add_items(store, catalogue_items())
    big = write_jsonl(
        tmp_path / "big.jsonl",
        [
            {"id": f"x{i}", "domain": "kitchen", "title": f"item {i} " + "y" * 900}
            for i in range(3000)
        ],
    )
    limit = db.stat().st_size + 256 * 1024

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "localrec", "--db", str(db), "add", "items", str(big)],
        env=subprocess_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{db}: could not write" in result.stderr
    assert "Nothing of this change was stored" in result.stderr
    assert count(db, "items") == 120
    with Store(db) as store:
        assert store.integrity_check() == "ok"
