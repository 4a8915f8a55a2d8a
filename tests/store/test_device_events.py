"""Events of a device's private database (schema 5): events on items that live outside the
database (a pack's catalogue), the migration that dropped events' foreign key, events
dated when they are added, and the count of events per item."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localrec.errors import InputError
from localrec.store.db import SCHEMA_VERSION, DeleteReport, Store
from localrec.store.ingest import add_events, add_events_file, add_items
from tests.helpers import write_csv

ITEMS = [
    {"id": "a", "domain": "books", "title": "book a"},
    {"id": "b", "domain": "books", "title": "book b"},
    {"id": "m", "domain": "music", "title": "album m"},
]
PACK = frozenset({"p1", "p2"})  # items of a pack, not in the database's items


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "t.db") as s:
        add_items(s, ITEMS)
        yield s


def _order(store: Store, user: str) -> list[str]:
    return [e.item_id for e, _ in store.user_events(user)]


# -- the migration to schema 5 --------------------------------------------------------------

# (id, user_id, item_id, action, value, ts, review); id 4 is deleted before the migration.
OLD_EVENTS = [
    (1, "alice", "a", "rate", 4.5, 1700000000.0, "fine"),
    (2, "alice", "b", "purchase", None, None, None),
    (3, "bob", "a", "view", 0.25, 1600000000.5, None),
    (4, "bob", "b", "purchase", None, 1.0, None),
]


def _schema4_db(path: Path, *, delete: tuple[int, ...] = (4,)) -> Path:
    """A database as localrec wrote it at schema 4, with the events above (`delete` gone)."""
    from sqlite_utils import Database

    from localrec.store.schema import migrations

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    migrations.apply(Database(conn), stop_before="m005_events_without_item_key")
    conn.executemany(
        "INSERT INTO items (id, domain, title) VALUES (?, 'books', ?)", [("a", "A"), ("b", "B")]
    )
    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", OLD_EVENTS)
    conn.execute(f"DELETE FROM events WHERE id IN ({','.join('?' * len(delete))})", delete)
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    return path


def test_schema4_events_migrate_with_every_id_value_and_time(tmp_path: Path) -> None:
    path = _schema4_db(tmp_path / "old.db")
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 6
        conn = store._conn
        assert conn.execute("SELECT * FROM events ORDER BY id").fetchall() == OLD_EVENTS[:3]
        assert conn.execute("PRAGMA foreign_key_list(events)").fetchall() == []
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
            "ORDER BY name"
        ).fetchall()
        assert indexes == [
            ("events_item", "CREATE INDEX events_item ON events(item_id)"),
            ("events_user", "CREATE INDEX events_user ON events(user_id, ts, id)"),
        ]
        assert store.integrity_check() == "ok"
        assert [name for (name,) in conn.execute("SELECT name FROM _sqlite_migrations")][-2:] == [
            "m005_events_without_item_key",
            "m006_vector_checksums",
        ]
        # AUTOINCREMENT survives the rebuild: the deleted id 4 is not handed out again.
        add_events(store, [{"user": "carol", "item": "p1", "time": 5}], known_items=PACK)
        assert conn.execute(
            "SELECT id, item_id FROM events WHERE user_id = 'carol'"
        ).fetchall() == [(5, "p1")]
    backups = sorted(p.name for p in tmp_path.glob("old.db.bak-*"))
    assert backups == ["old.db.bak-schema4"]
    backup = sqlite3.connect(tmp_path / "old.db.bak-schema4")
    try:
        assert backup.execute("SELECT * FROM events ORDER BY id").fetchall() == OLD_EVENTS[:3]
        assert backup.execute("PRAGMA foreign_key_list(events)").fetchall() != []
    finally:
        backup.close()


def test_ids_keep_counting_when_every_old_event_was_deleted(tmp_path: Path) -> None:
    path = _schema4_db(tmp_path / "old.db", delete=(1, 2, 3, 4))
    with Store(path) as store:
        assert store.stats()["events"] == 0
        add_events(store, [{"user": "u", "item": "a"}])
        assert store._conn.execute("SELECT id FROM events").fetchall() == [(5,)]


# -- events on items outside the database ----------------------------------------------------


def test_known_items_are_accepted_and_unknown_ones_still_name_their_line(
    store: Store, tmp_path: Path
) -> None:
    rows = [{"user": "u", "item": "a"}, {"user": "u", "item": "p1"}, {"user": "u", "item": "x"}]
    with pytest.raises(InputError, match=r"<events>:3: unknown item 'x'.*nothing from"):
        add_events(store, rows, known_items=PACK)
    assert store.stats()["events"] == 0
    report = add_events(store, rows, known_items=PACK, skip_invalid=True)
    assert report.stored == 2
    assert [line for line, _ in report.skipped] == [3]
    # Without known_items a pack's item is unknown like any other.
    with pytest.raises(InputError, match=r"<events>:1: unknown item 'p2'"):
        add_events(store, [{"user": "u", "item": "p2"}])
    path = write_csv(tmp_path / "e.csv", [{"user": "v", "item": "p2"}, {"user": "v", "item": "m"}])
    assert add_events_file(store, path, known_items=PACK).stored == 2
    assert _order(store, "v") == ["p2", "m"]


def test_user_events_give_no_domain_for_items_outside_and_a_domain_filter_drops_them(
    store: Store,
) -> None:
    add_events(
        store,
        [
            {"user": "u", "item": "p1", "time": 1},
            {"user": "u", "item": "a", "time": 2},
            {"user": "u", "item": "m", "time": 3},
        ],
        known_items=PACK,
    )
    events = store.user_events("u")
    assert [(e.item_id, e.ts, domain) for e, domain in events] == [
        ("p1", 1.0, None),
        ("a", 2.0, "books"),
        ("m", 3.0, "music"),
    ]
    books = store.user_events("u", ["books"])
    assert [(e.item_id, domain) for e, domain in books] == [("a", "books")]
    assert store.user_events("u", ["books", "music"])[1][1] == "music"


def test_delete_items_deletes_their_events_and_keeps_those_on_pack_items(store: Store) -> None:
    add_events(
        store,
        [
            {"user": "u", "item": "a"},
            {"user": "w", "item": "a"},
            {"user": "u", "item": "b"},
            {"user": "u", "item": "p1"},
        ],
        known_items=PACK,
    )
    assert store.delete_items(["a", "p1", "a"]) == DeleteReport(deleted=1, unknown=("p1",))
    assert store.event_items() == {"b": 1, "p1": 1}
    assert _order(store, "u") == ["b", "p1"]
    assert store.user_events("w") == []


def test_event_items_counts_events_per_item_of_one_user_or_of_all(store: Store) -> None:
    assert store.event_items() == {}
    add_events(
        store,
        [
            {"user": "u", "item": "a"},
            {"user": "u", "item": "a"},
            {"user": "u", "item": "p1"},
            {"user": "w", "item": "a"},
            {"user": "w", "item": "m"},
        ],
        known_items=PACK,
    )
    assert store.event_items() == {"a": 3, "p1": 1, "m": 1}
    assert store.event_items("u") == {"a": 2, "p1": 1}
    assert store.event_items("w") == {"a": 1, "m": 1}
    assert store.event_items("nobody") == {}
    # What a caller counts with it: events on items that left the catalogue (here, a pack
    # that no longer has p1).
    catalogue = {"a", "m"}
    assert sum(n for i, n in store.event_items().items() if i not in catalogue) == 1


# -- events without a time --------------------------------------------------------------------


def test_events_without_a_time_come_after_the_users_earlier_timed_events(store: Store) -> None:
    add_events(store, [{"user": "u", "item": "m", "time": "2024-01-02T03:04:05Z"}])
    before = time.time()
    add_events(store, [{"user": "u", "item": "a"}, {"user": "u", "item": "b", "time": ""}])
    after = time.time()
    events = store.user_events("u")
    assert [e.item_id for e, _ in events] == ["m", "a", "b"]
    assert events[0][0].ts == 1704164645.0
    assert all(before <= (e.ts or 0) <= after for e, _ in events[1:])
    # An event dated earlier, added later, still sorts by its time.
    add_events(store, [{"user": "u", "item": "b", "time": 1000}])
    assert _order(store, "u") == ["b", "m", "a", "b"]


def test_events_without_a_time_keep_their_file_order(store: Store, tmp_path: Path) -> None:
    order = ["b", "m", "a", "p2", "a", "p1"]
    path = write_csv(tmp_path / "e.csv", [{"user": "u", "item": i} for i in order])
    assert add_events_file(store, path, known_items=PACK).stored == len(order)
    events = store.user_events("u")
    assert [e.item_id for e, _ in events] == order
    assert len({e.ts for e, _ in events}) == 1 and events[0][0].ts is not None
    assert [item for item, _, _ in store.user_sequences()["u"]] == order
