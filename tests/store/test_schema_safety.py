"""Schema safety through the CLI: a database written by a newer localrec, or a foreign SQLite
file, is refused and left byte for byte untouched; an older one is backed up, then migrated."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from localrec.store.db import SCHEMA_VERSION, Store
from tests.helpers import (
    assert_clean,
    invoke,
    old_schema_db,
    tables,
    write_csv,
)


def _newer_schema_db(path: Path, journal: str) -> Path:
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
        "VALUES ('localrec', 'm999_future', 'x')"
    )
    conn.execute("INSERT INTO items (id, domain, title) VALUES ('keep', 'd', 'kept')")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    conn.commit()
    conn.close()
    return path


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.parent.glob(path.name + "*"))}


@pytest.mark.parametrize("command", [["stats"], ["add", "items"], ["encode"], ["forget"]])
def test_a_newer_schema_is_refused_untouched_through_the_cli(
    tmp_path: Path, command: list[str]
) -> None:
    db = _newer_schema_db(tmp_path / "new.db", "WAL")
    items = write_csv(tmp_path / "items.csv", [{"id": "x", "domain": "d", "title": "t"}])
    extra = {"add": [str(items)], "forget": ["keep", "--yes"]}.get(command[0], [])
    before = _files(db)
    assert list(before) == ["new.db"]
    result = invoke("--db", str(db), *command, *extra)
    assert_clean(result, 1)
    assert f"written by a newer localrec (schema version {SCHEMA_VERSION + 7}" in result.stderr
    assert "The database was not changed" in result.stderr
    assert db.read_bytes() == before["new.db"]
    assert not list(tmp_path.glob("new.db.bak-*"))


@pytest.mark.parametrize("kind", ["newer localrec", "foreign sqlite"])
def test_a_refused_database_in_rollback_mode_is_left_untouched(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "dbs"
    folder.mkdir()
    db = folder / "x.db"
    if kind == "newer localrec":
        _newer_schema_db(db, "DELETE")
    else:
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE bookmarks (url TEXT)")
        conn.execute("INSERT INTO bookmarks VALUES ('https://example.org')")
        conn.commit()
        conn.close()
    before = db.read_bytes()
    result = invoke("--db", str(db), "stats")
    assert_clean(result, 1)
    assert db.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["x.db"]


def test_an_older_schema_is_backed_up_then_migrated_through_the_cli(tmp_path: Path) -> None:
    db = old_schema_db(tmp_path / "old.db")
    result = invoke("--db", str(db), "stats", "--json")
    assert_clean(result, 0)
    stats = json.loads(result.stdout)
    assert stats["schema_version"] == SCHEMA_VERSION
    assert (stats["items"], stats["events"], stats["users"]) == ({"books": 1}, 1, 1)
    backups = sorted(tmp_path.glob("old.db.bak-*"))
    assert [b.name for b in backups] == ["old.db.bak-schema1"]
    assert "adapters" not in tables(backups[0]) and "adapters" in tables(db)
    conn = sqlite3.connect(backups[0])
    assert conn.execute("SELECT id, title FROM items").fetchall() == [("a", "kept")]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    # A second run has nothing to migrate and makes no second backup.
    assert_clean(invoke("--db", str(db), "stats"), 0)
    assert sorted(tmp_path.glob("old.db.bak-*")) == backups
