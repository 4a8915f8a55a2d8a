"""The SQLite store: schema, migrations and their safety, vectors, the matrix read, forget."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localrec.errors import DatabaseError, NotEncoded, SchemaError
from localrec.store.db import SCHEMA_VERSION, Store
from localrec.store.ingest import add_events, add_items
from localrec.store.item_vectors import encode_items
from tests.fakes import FakeEncoder


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "t.db") as s:
        yield s


def test_new_database_has_wal_foreign_keys_and_version(store: Store) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.schema_version == SCHEMA_VERSION
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"events_user", "events_item", "items_domain", "vectors_model"} <= indexes


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
        "VALUES ('localrec', 'm999_future', 'x')"
    )
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(SchemaError, match="newer localrec"):
        Store(path)
    assert path.read_bytes() == before


def test_older_schema_is_backed_up_then_migrated(tmp_path: Path) -> None:
    from localrec.store.schema import migrations

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    from sqlite_utils import Database

    db = Database(conn)
    migrations.apply(db, stop_before="m002_adapters")
    conn.execute("INSERT INTO items (id, domain, title) VALUES ('a', 'd', 'kept')")
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.get_items(["a"])["a"].title == "kept"
        store.put_adapter("m", "x", {}, b"1")
    backups = list(tmp_path.glob("old.db.bak-*"))
    assert len(backups) == 1
    old = sqlite3.connect(backups[0])
    tables = {r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "adapters" not in tables and "items" in tables


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="not a localrec database"):
        Store(path)


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match="not a usable SQLite database"):
        Store(path)


def test_missing_database_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="localrec add items"):
        Store(tmp_path / "none.db", create=False)


def _catalogue(store: Store, n: int = 50) -> None:
    add_items(
        store,
        [{"id": f"i{k}", "domain": "a" if k % 2 else "b", "title": f"item {k}"} for k in range(n)],
    )


def test_vectors_round_trip_bit_for_bit(store: Store) -> None:
    _catalogue(store)
    encoder = FakeEncoder(dim=384)
    encode_items(store, encoder)
    matrix = store.item_matrix("fake")
    assert matrix.matrix.dtype == np.float32 and matrix.matrix.flags["C_CONTIGUOUS"]
    assert list(matrix.ids) == [f"i{k}" for k in range(50)]
    expected = encoder.encode([f"item {k}" for k in range(50)])
    assert matrix.matrix.tobytes() == expected.astype("<f4").tobytes()
    blob = store._conn.execute("SELECT vector FROM vectors WHERE owner = 'i3'").fetchone()[0]
    assert blob == expected[3].astype("<f4").tobytes()


def test_matrix_per_domain_and_cache_invalidation(store: Store) -> None:
    _catalogue(store)
    encode_items(store, FakeEncoder())
    a = store.item_matrix("fake", "a")
    assert a.ids == tuple(f"i{k}" for k in range(1, 50, 2))
    assert store.item_matrix("fake", "a") is a  # cached
    add_items(store, [{"id": "i1", "domain": "a", "title": "changed"}])
    encode_items(store, FakeEncoder())
    fresh = store.item_matrix("fake", "a")
    assert fresh is not a
    assert not np.array_equal(fresh.matrix[0], a.matrix[0])


def test_matrix_dimension_is_checked(store: Store) -> None:
    _catalogue(store, 4)
    encode_items(store, FakeEncoder(dim=16))
    with pytest.raises(DatabaseError, match="have 16 dimensions but the model has 384"):
        store.item_matrix("fake", dim=384)


def test_no_vectors_says_to_encode(store: Store) -> None:
    _catalogue(store, 4)
    with pytest.raises(NotEncoded, match="run `localrec encode --model other`"):
        store.item_matrix("other")


def test_corrupt_blob_length_is_refused_by_the_schema(store: Store) -> None:
    _catalogue(store, 2)
    with pytest.raises(sqlite3.IntegrityError), store.write() as conn:
        conn.execute("INSERT INTO vectors VALUES ('item', 'i0', 'm', 4, 'h', ?, 0)", (b"\0" * 12,))


def test_forget_removes_the_users_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    secret = "alice-secret-user-7f3a"
    with Store(path) as store:
        _catalogue(store, 6)
        add_events(store, [{"user": secret, "item": "i1", "review": "my private review xyzzy"}])
        add_events(store, [{"user": "bob", "item": "i2"}])
        assert store.forget_user(secret) == 1
        store.vacuum()
        assert store.stats()["users"] == 1
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("f.db"))
    assert secret.encode() not in raw and b"xyzzy" not in raw
    assert b"bob" in raw


def test_integrity_check(store: Store) -> None:
    assert store.integrity_check() == "ok"


def test_schema_version_constant_matches_the_migrations() -> None:
    from localrec.store import db, schema

    assert db.SCHEMA_VERSION == schema.SCHEMA_VERSION == len(schema.migrations._migrations)


def test_packed_matrix_equals_the_row_read_and_goes_stale(store: Store) -> None:
    _catalogue(store, 30)
    encode_items(store, FakeEncoder())  # packs at the end
    assert store.packed_is_current("fake")
    store._matrix_cache.clear()
    packed = store.item_matrix("fake", "a")
    rows = store._read_rows(store._conn, "fake", "a")
    assert packed.ids == rows.ids and packed.domains == rows.domains
    assert packed.matrix.tobytes() == rows.matrix.tobytes()
    # Moving an item to another domain changes no text, so no vector: the copy is stale.
    add_items(store, [{"id": "i1", "domain": "b", "title": "item 1"}])
    assert not store.packed_is_current("fake")
    assert "i1" in store.item_matrix("fake", "b").ids
    assert "i1" not in store.item_matrix("fake", "a").ids
    assert encode_items(store, FakeEncoder()).encoded == 0
    assert store.packed_is_current("fake")  # repacked although nothing was encoded


def test_opening_a_missing_database_read_only_creates_nothing(tmp_path: Path) -> None:
    from localrec.errors import DatabaseError

    with pytest.raises(DatabaseError, match="no such database"):
        Store(tmp_path / "new.db", readonly=True)
    assert not (tmp_path / "new.db").exists()
