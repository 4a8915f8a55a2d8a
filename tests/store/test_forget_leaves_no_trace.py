"""`forget`: every row and every byte of the user goes, in the database, its -wal and -shm
files, the migration backup and eval's cache of the user's history; everybody else stays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.linalg import norm

from localrec.store.db import Store
from localrec.store.item_vectors import encode_items
from tests.conftest import DEFAULT_MODEL
from tests.fakes import FakeEncoder
from tests.helpers import (
    assert_clean,
    catalogue_items,
    count,
    invoke,
    old_schema_db,
    write_csv,
    write_jsonl,
)

SECRET_USER = "alice-7f3a-secret"
SECRET_REVIEW = "my private review xyzzy-42"


def _raw_bytes(db: Path, pattern: str = "*") -> bytes:
    return b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + pattern)))


def _forget_fixture_db(tmp_path: Path) -> Path:
    db = tmp_path / "f.db"
    items = write_csv(tmp_path / "items.csv", catalogue_items()[:12])
    events: list[dict[str, Any]] = [
        {"user": SECRET_USER, "item": "k000", "action": "review", "review": SECRET_REVIEW},
        {"user": SECRET_USER, "item": "b001", "action": "rate", "value": 5},
        {"user": "bob", "item": "k001", "review": "bob's public note"},
        {"user": "carol", "item": "b002"},
    ]
    assert_clean(invoke("--db", str(db), "add", "items", str(items)), 0)
    assert_clean(
        invoke("--db", str(db), "add", "events", str(write_jsonl(tmp_path / "e.jsonl", events))), 0
    )
    with Store(db) as store:
        encode_items(store, FakeEncoder(name=DEFAULT_MODEL, dim=384))
        rng = np.random.default_rng(0)
        for user in (SECRET_USER, "bob"):
            vector = rng.standard_normal(384)
            store.put_user_vector(user, DEFAULT_MODEL, f"digest-{user}", vector / norm(vector))
    return db


def test_forget_removes_every_row_and_byte_of_the_user(tmp_path: Path) -> None:
    db = _forget_fixture_db(tmp_path)
    assert SECRET_USER.encode() in _raw_bytes(db)
    assert SECRET_REVIEW.encode() in _raw_bytes(db)

    declined = invoke("--db", str(db), "forget", SECRET_USER, input="n\n")
    assert_clean(declined, 1)
    assert count(db, "events", "WHERE user_id = ?", (SECRET_USER,)) == 2

    result = invoke("--db", str(db), "forget", SECRET_USER, "--yes")
    assert_clean(result, 0)
    assert f"deleted 3 row(s) of user {SECRET_USER!r} and vacuumed" in result.stdout
    assert count(db, "events", "WHERE user_id = ?", (SECRET_USER,)) == 0
    assert count(db, "vectors", "WHERE kind = 'user' AND owner = ?", (SECRET_USER,)) == 0
    # Everybody else is intact.
    assert count(db, "events") == 2 and count(db, "items") == 12
    assert count(db, "vectors", "WHERE kind = 'user' AND owner = 'bob'") == 1
    assert count(db, "vectors", "WHERE kind = 'item'") == 12
    raw = _raw_bytes(db)  # .db, and -wal/-shm if present
    assert SECRET_USER.encode() not in raw
    assert SECRET_REVIEW.encode() not in raw and b"xyzzy" not in raw
    assert b"bob's public note" in raw
    again = invoke("--db", str(db), "forget", SECRET_USER, "--yes")
    assert_clean(again, 3)  # nothing of the user is left: forget says so with exit 3
    assert "holds nothing of user" in again.stderr


def test_forget_also_reaches_the_migration_backup(tmp_path: Path) -> None:
    db = old_schema_db(tmp_path / "old.db")
    assert_clean(invoke("--db", str(db), "stats"), 0)
    assert_clean(invoke("--db", str(db), "forget", "alice-old-7f3a", "--yes"), 0)
    assert count(db, "events") == 0
    everything = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"alice-old-7f3a" not in everything and b"qwerty-99" not in everything


def test_forget_after_eval_leaves_no_vector_or_byte_of_the_users_history(
    model_home: Path, tmp_path: Path, one_thread: None
) -> None:
    """eval on a user's database embeds histories for the run only (schema 4: no history
    vector is stored as a user vector or cached), so after forget nothing of the user's
    history is left in the database, its -wal or its -shm."""
    db = tmp_path / "e.db"
    items = write_csv(tmp_path / "items.csv", catalogue_items()[:24] + catalogue_items()[60:84])
    events = [
        {"user": SECRET_USER, "item": item, "time": n}
        for n, item in enumerate(["k000", "b001", "k012", "b013"])
    ] + [
        {"user": "bob", "item": item, "time": n} for n, item in enumerate(["k021", "b011", "k062"])
    ]
    assert_clean(invoke("--db", str(db), "add", "items", str(items)), 0)
    assert_clean(
        invoke("--db", str(db), "add", "events", str(write_jsonl(tmp_path / "e.jsonl", events))), 0
    )
    assert_clean(invoke("--db", str(db), "eval", "--negatives", "5"), 0)
    assert count(db, "vectors", "WHERE kind = 'user'") == 0
    assert count(db, "history_vectors") == 0
    assert_clean(invoke("--db", str(db), "forget", SECRET_USER, "--yes"), 0)
    assert count(db, "events", "WHERE user_id = ?", (SECRET_USER,)) == 0
    assert count(db, "vectors", "WHERE kind = 'user'") == 0
    assert SECRET_USER.encode() not in _raw_bytes(db)
