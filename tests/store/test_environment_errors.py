"""The environment gets in the way: a read-only file or directory, a full disk, a damaged
page, a lock held too long, an empty file. Each is one `DatabaseError` naming the file and
what to do; reading works from a read-only directory; a damaged file refuses writes; and
nothing stored is changed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from localrec.errors import (
    DatabaseCorrupt,
    DatabaseError,
    DatabaseLocked,
    DatabaseReadOnly,
)
from localrec.store.db import Store
from localrec.store.ingest import add_events
from tests.fakes import FakeEncoder
from tests.helpers import catalogue_db, file_digest, read_only


def _db(tmp_path: Path) -> Path:
    events = [{"user": "ann", "item": "k000"}, {"user": "ann", "item": "b001"}]
    return catalogue_db(tmp_path / "data" / "app.db", events, FakeEncoder())


def damage_page(db: Path, table: str) -> None:
    """Overwrite the first 100 bytes of a table's root page: a malformed page, as a bad
    sector or a torn copy leaves it, while the file keeps its size."""
    conn = sqlite3.connect(db)
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with db.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * 100)


def test_a_read_only_directory_is_read_immutable_and_refuses_writes(tmp_path: Path) -> None:
    db = _db(tmp_path)
    before = file_digest(db)
    with read_only(db.parent):
        with Store(db) as store:
            assert store.immutable
            assert store.stats()["items_total"] == 120
            assert len(store.item_matrix("fake", "kitchen").ids) == 60
            with pytest.raises(DatabaseReadOnly, match=r"its directory .*data is read-only"):
                add_events(store, [{"user": "bob", "item": "k001"}])
        assert sorted(p.name for p in db.parent.iterdir()) == ["app.db"]
    assert file_digest(db) == before


def test_a_read_only_file_refuses_writes_and_stays_as_it_was(tmp_path: Path) -> None:
    db = _db(tmp_path)
    before = file_digest(db)
    with read_only(db), Store(db) as store:
        assert store.stats()["events"] == 2
        for write in (
            lambda: add_events(store, [{"user": "bob", "item": "k001"}]),
            lambda: store.config_set("template.kitchen", "{title}"),
            lambda: store.forget_user("ann"),
        ):
            with pytest.raises(DatabaseReadOnly, match=r"app\.db: cannot write: the file or"):
                write()
    assert file_digest(db) == before


@pytest.mark.parametrize("table", ["items", "events"])
def test_a_damaged_page_refuses_writes_and_reads_of_it(tmp_path: Path, table: str) -> None:
    db = _db(tmp_path)
    damage_page(db, table)
    before = file_digest(db)
    with Store(db) as store:
        with pytest.raises(DatabaseCorrupt, match=r"app\.db: the database file is damaged"):
            store.stats()
        # Whatever the write touches, the damaged file is not written to.
        with pytest.raises(DatabaseCorrupt, match=r"\.recover"):
            store.config_set("template.kitchen", "{title}")
    with Store(db) as store, pytest.raises(DatabaseCorrupt):
        if table == "items":
            list(store.iter_items("kitchen"))
        else:
            store.user_events("ann")
    assert file_digest(db) == before


def test_a_lock_held_too_long_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import localrec.store.connection as connection

    monkeypatch.setattr(connection, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(connection, "RETRIES", 2)
    db = _db(tmp_path)
    holder = sqlite3.connect(db)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Store(db) as store, pytest.raises(DatabaseLocked, match="stayed locked"):
            add_events(store, [{"user": "bob", "item": "k001"}])
    finally:
        holder.rollback()
        holder.close()
    with Store(db) as store:
        assert store.stats()["events"] == 2


def test_an_empty_file_is_not_taken_for_a_new_database(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(DatabaseError, match=r"empty\.db: is an empty file \(0 bytes\)"):
        Store(empty)
    assert empty.stat().st_size == 0
