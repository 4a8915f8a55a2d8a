"""A stored vector damaged in the file (its bytes changed, the database still consistent)
is never scored: it is left out of every matrix, named, and the lists keep their length."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import FakeEncoder
from tests.helpers import catalogue_db

DAMAGED = "k003"


def _xor(blob: bytes, start: int, length: int = 64) -> bytes:
    data = bytearray(blob)
    for i in range(start, min(start + length, len(data))):
        data[i] ^= 0xA5
    return bytes(data)


def _encoded(tmp_path: Path) -> Path:
    events = [{"user": "ann", "item": "k000"}, {"user": "ann", "item": "k001"}]
    return catalogue_db(tmp_path / "app.db", events, FakeEncoder())


def _swap(blob: bytes, start: int) -> bytes:
    """Two floats swapped: the vector keeps its length exactly, only its checksum shows it."""
    data = bytearray(blob)
    data[start : start + 4], data[start + 4 : start + 8] = (
        data[start + 4 : start + 8],
        data[start : start + 4],
    )
    return bytes(data)


def _damage(db: Path, where: str, how: str = "xor") -> None:
    """Bytes of the item's vector changed in place, in its row or in the packed matrix:
    64 bytes XOR-ed, or two floats swapped (`how`)."""
    change = _xor if how == "xor" else _swap
    conn = sqlite3.connect(db)
    with conn:
        if where == "row":
            conn.execute("DELETE FROM matrices")  # reads go row by row
            (blob,) = conn.execute(
                "SELECT vector FROM vectors WHERE kind = 'item' AND owner = ?", (DAMAGED,)
            ).fetchone()
            conn.execute(
                "UPDATE vectors SET vector = ? WHERE kind = 'item' AND owner = ?",
                (change(blob, 0), DAMAGED),
            )
        else:
            ids, data = conn.execute("SELECT ids, data FROM matrices").fetchone()
            row = ids.split("\x1f").index(DAMAGED)
            conn.execute("UPDATE matrices SET data = ?", (change(data, row * 16 * 4),))
    conn.close()


@pytest.mark.parametrize("how", ["xor", "swap"])
@pytest.mark.parametrize("where", ["row", "packed"])
def test_a_damaged_vector_is_left_out_and_named(tmp_path: Path, where: str, how: str) -> None:
    from localrec.recommend.recommender import Recommender
    from localrec.store.db import Store

    db = _encoded(tmp_path)
    _damage(db, where, how)
    with Store(db) as store:
        matrix = store.item_matrix("fake", "kitchen")
        assert matrix.damaged == (DAMAGED,) and DAMAGED not in matrix.ids
        norms = np.linalg.norm(matrix.matrix, axis=1)
        assert np.allclose(norms, 1.0, atol=1e-3)
    with Recommender(db, encoder=FakeEncoder()) as rec:
        assert len(rec.recommend("ann", domain="kitchen", k=10, user_vector="item-mean")) == 10
        # Every kitchen item but the two ann has and the damaged one, each a cosine.
        got = rec.recommend("ann", domain="kitchen", k=60, user_vector="item-mean")
        assert len(got.items) == 57 and DAMAGED not in [r.item_id for r in got]
        assert all(-1.0 - 1e-6 <= r.score <= 1.0 + 1e-6 for r in got)
        left_out = f"damaged in the database and were left out ('{DAMAGED}')"
        assert any(left_out in note for note in got.notes)
        assert not any("no fake vector yet" in note for note in got.notes)


def test_a_packed_copy_keeps_the_rows_checksums_so_damage_is_not_laundered(
    tmp_path: Path,
) -> None:
    """Packing the matrix again after a row was damaged keeps that row's stored checksum:
    the damage is still found in the new packed copy."""
    from localrec.store.db import Store

    db = _encoded(tmp_path)
    _damage(db, "row", "swap")
    with Store(db) as store:
        assert store.pack_matrix("fake")
        assert store.packed_is_current("fake")
        assert store.item_matrix("fake").damaged == (DAMAGED,)


def test_a_damaged_history_or_user_vector_is_embedded_again(tmp_path: Path) -> None:
    """A damaged vector of an item in a history, or of a stored user's text, is not used:
    the lookup leaves it out, so the caller embeds the text again."""
    from localrec.store.db import Store

    db = _encoded(tmp_path)
    unit = np.full((1, 16), 0.25, dtype=np.float32)
    with Store(db) as store:
        store.put_user_vector("ann", "fake", "d1", unit[0])
        assert store.user_vector("ann", "fake", "d1") is not None
        assert set(store.item_vectors("fake", ["k000", DAMAGED])) == {"k000", DAMAGED}
    _damage(db, "row", "swap")
    conn = sqlite3.connect(db)
    with conn:
        (blob,) = conn.execute("SELECT vector FROM vectors WHERE kind = 'user'").fetchone()
        conn.execute("UPDATE vectors SET vector = ? WHERE kind = 'user'", (_xor(blob, 8, 4),))
    conn.close()
    with Store(db) as store:
        assert set(store.item_vectors("fake", ["k000", DAMAGED])) == {"k000"}
        assert store.user_vector("ann", "fake", "d1") is None


def test_a_schema5_database_gets_the_checksums_of_its_vectors(tmp_path: Path) -> None:
    """The upgrade to schema 6 gives every stored vector and packed row the checksum of
    what it holds, and the packed copy stays the one read."""
    from localrec.store.db import Store

    db = _encoded(tmp_path)
    conn = sqlite3.connect(db)
    with conn:
        for table in ("vectors", "history_vectors"):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN checksum")
        conn.execute("ALTER TABLE matrices DROP COLUMN checksums")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm006_vector_checksums'")
        conn.execute("PRAGMA user_version = 5")
    conn.close()
    with Store(db) as store:
        assert store.schema_version == 6
        assert store.packed_is_current("fake")
        missing = store._conn.execute(
            "SELECT count(*) FROM vectors WHERE checksum IS NULL"
        ).fetchone()
        assert missing == (0,)
        matrix = store.item_matrix("fake")
        assert len(matrix.ids) == 120 and matrix.damaged == ()
    _damage(db, "packed", "swap")
    with Store(db) as store:
        assert store.item_matrix("fake").damaged == (DAMAGED,)
