"""A stored vector damaged in the file (its bytes changed, the database still consistent)
is never scored: it is left out of every matrix, named, and the lists keep their length."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import FakeEncoder
from tests.helpers import catalogue_items

DAMAGED = "k003"


def _xor(blob: bytes, start: int, length: int = 64) -> bytes:
    data = bytearray(blob)
    for i in range(start, min(start + length, len(data))):
        data[i] ^= 0xA5
    return bytes(data)


def _encoded(tmp_path: Path) -> Path:
    from localrec.store.db import Store
    from localrec.store.ingest import add_events, add_items
    from localrec.store.item_vectors import encode_items

    db = tmp_path / "app.db"
    with Store(db) as store:
        add_items(store, catalogue_items())
        add_events(store, [{"user": "ann", "item": "k000"}, {"user": "ann", "item": "k001"}])
        encode_items(store, FakeEncoder())
    return db


def _damage(db: Path, where: str) -> None:
    """64 bytes XOR-ed inside the item's vector, in its row or in the packed matrix."""
    conn = sqlite3.connect(db)
    with conn:
        if where == "row":
            conn.execute("DELETE FROM matrices")  # reads go row by row
            (blob,) = conn.execute(
                "SELECT vector FROM vectors WHERE kind = 'item' AND owner = ?", (DAMAGED,)
            ).fetchone()
            conn.execute(
                "UPDATE vectors SET vector = ? WHERE kind = 'item' AND owner = ?",
                (_xor(blob, 0), DAMAGED),
            )
        else:
            ids, data = conn.execute("SELECT ids, data FROM matrices").fetchone()
            row = ids.split("\x1f").index(DAMAGED)
            conn.execute("UPDATE matrices SET data = ?", (_xor(data, row * 16 * 4),))
    conn.close()


@pytest.mark.parametrize("where", ["row", "packed"])
def test_a_damaged_vector_is_left_out_and_named(tmp_path: Path, where: str) -> None:
    from localrec.recommend.recommender import Recommender
    from localrec.store.db import Store

    db = _encoded(tmp_path)
    _damage(db, where)
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
