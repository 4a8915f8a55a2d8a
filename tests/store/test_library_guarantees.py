"""What the store guarantees a Python caller as much as the CLI user: a database created on
first write and removed again when that write fails, deletes that name the unknown ids,
a forget that leaves no bytes behind, and eval's history-text cache kept apart from the
vectors of stored users (schema 4)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from localrec.errors import DatabaseError, InputError
from localrec.evaluation.scorers import HistoryTextCache
from localrec.store.db import SCHEMA_VERSION, DeleteReport, Store, open_for_write
from localrec.store.ingest import add_events, add_items
from localrec.store.item_vectors import content_hash
from tests.fakes import FakeEncoder

ITEMS = [{"id": i, "domain": "books", "title": f"book {i}"} for i in ("a", "b", "c")]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "t.db") as s:
        add_items(s, ITEMS)
        yield s


def _files(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(path.name + "*"))


# -- open_for_write ----------------------------------------------------------------------


def test_open_for_write_creates_the_database_and_keeps_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.db"
    with open_for_write(path) as store:
        add_items(store, ITEMS)
    assert path.is_file()
    with Store(path, create=False) as store:
        assert store.stats()["items_total"] == 3


@pytest.mark.parametrize(
    "error", [InputError("no rows"), ValueError("bad value")], ids=["localrec", "other"]
)
def test_a_failed_first_write_leaves_no_database_behind(tmp_path: Path, error: Exception) -> None:
    path = tmp_path / "new.db"
    with pytest.raises(type(error), match=str(error)), open_for_write(path) as store:
        assert store.is_empty()
        raise error
    assert _files(path) == []  # nor its -wal and -shm


def test_a_failed_write_keeps_a_database_that_existed(store: Store) -> None:
    path = store.path
    with pytest.raises(InputError), open_for_write(path):
        raise InputError("bad file")
    with Store(path, create=False) as again:
        assert again.stats()["items_total"] == 3


def test_a_failed_first_write_keeps_what_was_stored_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with pytest.raises(InputError), open_for_write(path) as store:
        store.config_set("template.books", "{title}")
        raise InputError("a later step failed")
    with Store(path, create=False) as again:
        assert again.config_items() == {"template.books": "{title}"}


# -- delete_items ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "deleted", "unknown"),
    [
        (["a", "b"], 2, ()),
        (["a", "nope"], 1, ("nope",)),
        (["nope", "a", "nope", "zzz"], 1, ("nope", "zzz")),
        (["a", "a"], 1, ()),
        (["x'); DROP TABLE items; --"], 0, ("x'); DROP TABLE items; --",)),
        ([], 0, ()),
    ],
)
def test_delete_items_reports_the_ids_it_did_not_find(
    store: Store, ids: list[str], deleted: int, unknown: tuple[str, ...]
) -> None:
    assert store.delete_items(ids) == DeleteReport(deleted=deleted, unknown=unknown)
    left = sorted(row.id for row in store.iter_items())
    assert left == sorted({"a", "b", "c"} - set(ids))


def test_delete_items_takes_the_items_events_and_vectors_with_them(store: Store) -> None:
    add_events(store, [{"user": "u", "item": "a"}, {"user": "u", "item": "b"}])
    with store.write() as conn:
        store.put_vectors(conn, "m", ["a", "b"], ["h1", "h2"], np.eye(2, dtype=np.float32))
    assert store.delete_items(iter(["a"])) == DeleteReport(deleted=1, unknown=())
    assert [e.item_id for e, _ in store.user_events("u")] == ["b"]
    assert store.vector_hashes("m") == {"b": "h2"}


# -- forget_user -------------------------------------------------------------------------


def test_forget_user_alone_removes_the_users_bytes_from_the_files(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    secret = "alice-secret-user-7f3a"
    with Store(path) as store:
        add_items(store, ITEMS)
        add_events(store, [{"user": secret, "item": "a", "review": "private note xyzzy"}])
        add_events(store, [{"user": "bob", "item": "b", "review": "bob's public note"}])
        store.put_user_vector(secret, "m", "digest", np.full(4, 0.5, dtype=np.float32))
        assert store.forget_user(secret) == 2  # one event, one vector; no vacuum() call
        assert store.stats()["users"] == 1
    raw = b"".join((tmp_path / name).read_bytes() for name in _files(path))
    assert secret.encode() not in raw and b"xyzzy" not in raw
    assert b"bob's public note" in raw


# -- eval's history-text cache -----------------------------------------------------------


def test_history_vectors_round_trip_by_model_and_content_hash(store: Store) -> None:
    vectors = np.array([[0.6, 0.8, 0, 0], [0, 0, 0.8, 0.6]], dtype=np.float32)
    store.put_history_vectors("m", ["h1", "h2"], vectors)
    found = store.history_vectors("m", ["h2", "missing", "h1", "h2"])
    assert sorted(found) == ["h1", "h2"]
    np.testing.assert_array_equal(found["h1"], vectors[0])
    np.testing.assert_array_equal(found["h2"], vectors[1])
    assert store.history_vectors("other-model", ["h1"]) == {}
    # They are no user's vectors, and no item's.
    assert store._conn.execute("SELECT count(*) FROM vectors").fetchone()[0] == 0


@pytest.mark.parametrize(("hashes", "rows"), [(["h1"], 2), (["h1", "h2"], 1), (["h1"], 0)])
def test_history_vectors_need_one_vector_per_hash(
    store: Store, hashes: list[str], rows: int
) -> None:
    with pytest.raises(ValueError, match="one vector per owner"):
        store.put_history_vectors("m", hashes, np.ones((rows, 4), dtype=np.float32))
    assert store.history_vectors("m", hashes) == {}


@pytest.mark.parametrize(
    "bad",
    [
        np.array([[1.0, 2.0, 3.0, 4.0]]),  # not of unit length
        np.array([[np.nan, 0.0, 0.0, 1.0]]),
        np.array([[np.inf, 0.0, 0.0, 0.0]]),
        np.zeros((1, 4)),
    ],
    ids=["long", "nan", "inf", "zero"],
)
def test_a_vector_that_is_not_finite_and_of_unit_length_is_never_stored(
    store: Store, bad: np.ndarray
) -> None:
    """A damaged model's NaN, or any vector whose dot product is no cosine, is refused and
    nothing of the batch is stored: item, user and history vectors alike."""
    good = np.array([[0.0, 1.0, 0.0, 0.0]])
    with pytest.raises(DatabaseError, match="not finite and of unit length"), store.write() as conn:
        store.put_vectors(conn, "m", ["a", "b"], ["h1", "h2"], np.vstack([good, bad]))
    with pytest.raises(DatabaseError, match="vector #1 of 1"):
        store.put_user_vector("u", "m", "digest", bad[0])
    with pytest.raises(DatabaseError, match="vector #2 of 2"):
        store.put_history_vectors("m", ["h1", "h2"], np.vstack([good, bad]))
    assert store._conn.execute("SELECT count(*) FROM vectors").fetchone()[0] == 0
    assert store.history_vectors("m", ["h1", "h2"]) == {}


def _cache_calls(store: Store | None) -> tuple[list[np.ndarray], int]:
    encoder = FakeEncoder(dim=8)
    histories: Sequence[np.ndarray] = [np.array([0, 1]), np.array([], dtype=np.int64)]
    titles = ["book a", "book b"]
    cache = HistoryTextCache(store, encoder, titles)
    out = [cache(histories), cache(histories)]
    if store is not None:
        # A later run's cache on the same store encodes nothing either.
        out.append(HistoryTextCache(store, encoder, titles)(histories))
    return out, encoder.calls


def test_a_dataset_cache_keeps_history_vectors_for_later_runs(store: Store) -> None:
    out, calls = _cache_calls(store)
    assert calls == 1
    assert all(np.array_equal(o, out[0]) for o in out)
    assert not out[0][1].any()  # an empty history gets a zero vector
    assert store._conn.execute("SELECT count(*) FROM history_vectors").fetchone()[0] == 1
    assert store._conn.execute("SELECT count(*) FROM vectors").fetchone()[0] == 0


def test_without_a_store_history_vectors_last_one_run() -> None:
    out, calls = _cache_calls(None)
    assert calls == 1  # the run's second call found the first one's vector
    assert np.array_equal(out[0], out[1]) and not out[0][1].any()


def _schema3_db(path: Path) -> tuple[Path, str]:
    """A database as localrec wrote it before schema 4: a stored user's vector, and eval's
    cache of a history text as a user vector owned by its content hash."""
    from sqlite_utils import Database

    from localrec.store.schema import migrations

    conn = sqlite3.connect(path)
    migrations.apply(Database(conn), stop_before="m004_history_vectors")
    conn.execute("PRAGMA user_version = 3")
    blob = np.full(4, 0.5, dtype="<f4").tobytes()
    digest = content_hash("m", "query: ", "bought book a")
    conn.executemany(
        "INSERT INTO vectors (kind, owner, model, dim, content_hash, vector) "
        "VALUES ('user', ?, 'm', 4, ?, ?)",
        [("alice", "alice-digest", blob), (digest, digest, blob)],
    )
    conn.commit()
    conn.close()
    return path, digest


def test_schema4_drops_the_old_cache_rows_and_keeps_stored_users_vectors(
    tmp_path: Path,
) -> None:
    path, digest = _schema3_db(tmp_path / "old.db")
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        owners = store._conn.execute("SELECT owner FROM vectors WHERE kind = 'user'").fetchall()
        assert owners == [("alice",)]
        assert store.user_vector("alice", "m", "alice-digest") is not None
        assert store.history_vectors("m", [digest]) == {}
        assert store.forget_user("alice") == 1
    assert [name for name in _files(path) if ".bak" in name] == ["old.db.bak-schema3"]


def test_forget_scrubs_the_old_cache_rows_from_a_schema3_backup(tmp_path: Path) -> None:
    path, digest = _schema3_db(tmp_path / "old.db")
    with Store(path) as store:
        store.forget_user("alice")
    backup = sqlite3.connect(tmp_path / "old.db.bak-schema3")
    try:
        assert backup.execute("SELECT count(*) FROM vectors").fetchone()[0] == 0
    finally:
        backup.close()
    raw = (tmp_path / "old.db.bak-schema3").read_bytes()
    assert b"alice" not in raw and digest.encode() not in raw
