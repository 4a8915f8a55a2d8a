"""The database schema as sqlite-utils migrations, and the checks run before applying them."""

from __future__ import annotations

import numpy as np
from sqlite_utils import Database, Migrations

from localrec.store.checksums import crc32_or_none, row_checksums

__all__ = ["MIGRATION_SET", "SCHEMA_VERSION", "migrations"]

MIGRATION_SET = "localrec"
migrations = Migrations(MIGRATION_SET)


@migrations()
def m001_initial(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE items (
            id TEXT PRIMARY KEY,
            domain TEXT NOT NULL,
            title TEXT NOT NULL,
            fields TEXT NOT NULL DEFAULT '{}',
            attributes TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    db.execute("CREATE INDEX items_domain ON items(domain)")
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL,
            item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            action TEXT NOT NULL,
            value REAL,
            ts REAL,
            review TEXT
        )
        """
    )
    db.execute("CREATE INDEX events_user ON events(user_id, ts, id)")
    db.execute("CREATE INDEX events_item ON events(item_id)")
    db.execute(
        """
        CREATE TABLE vectors (
            kind TEXT NOT NULL CHECK (kind IN ('item', 'user')),
            owner TEXT NOT NULL,
            model TEXT NOT NULL,
            dim INTEGER NOT NULL CHECK (dim > 0),
            content_hash TEXT NOT NULL,
            vector BLOB NOT NULL CHECK (length(vector) = 4 * dim),
            PRIMARY KEY (kind, owner, model)
        )
        """
    )
    db.execute("CREATE INDEX vectors_model ON vectors(model, kind)")
    db.execute("CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    # Bumped by every write that changes vectors, so readers know when a cache is stale.
    db.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    db.execute("INSERT INTO state (key, value) VALUES ('vectors', 0)")


@migrations()
def m002_adapters(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE adapters (
            model TEXT NOT NULL,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            meta TEXT NOT NULL,
            payload BLOB NOT NULL,
            PRIMARY KEY (model, name)
        )
        """
    )


@migrations()
def m003_matrices(db: Database) -> None:
    # Each model's item matrix packed into one BLOB (row order = items' rowid order), so a
    # cold load is one sequential read instead of a join over one row per vector.
    db.execute(
        """
        CREATE TABLE matrices (
            model TEXT PRIMARY KEY,
            generation INTEGER NOT NULL,
            dim INTEGER NOT NULL,
            ids TEXT NOT NULL,
            domains TEXT NOT NULL,
            data BLOB NOT NULL
        )
        """
    )


@migrations()
def m004_history_vectors(db: Database) -> None:
    # `eval`'s cache of history-text vectors, keyed by the text's content hash. It was kept
    # as user vectors whose owner was that hash; those rows are only a cache (of vectors
    # derived from users' histories, attributable to no user), so they are dropped, and
    # user vectors are once more only those of stored users.
    db.execute(
        """
        CREATE TABLE history_vectors (
            model TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            dim INTEGER NOT NULL CHECK (dim > 0),
            vector BLOB NOT NULL CHECK (length(vector) = 4 * dim),
            PRIMARY KEY (model, content_hash)
        )
        """
    )
    db.execute("DELETE FROM vectors WHERE kind = 'user' AND owner = content_hash")


@migrations()
def m005_events_without_item_key(db: Database) -> None:
    # A device's private database holds events on items of a read-only pack, which are not
    # in its own items table: events keep no foreign key, and delete_items deletes them.
    # SQLite cannot drop a constraint, so the table is rebuilt with every row and its id.
    seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    db.execute(
        """
        CREATE TABLE events_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            action TEXT NOT NULL,
            value REAL,
            ts REAL,
            review TEXT
        )
        """
    )
    db.execute(
        "INSERT INTO events_new (id, user_id, item_id, action, value, ts, review) "
        "SELECT id, user_id, item_id, action, value, ts, review FROM events ORDER BY id"
    )
    db.execute("DROP TABLE events")  # its indexes go with it
    db.execute("ALTER TABLE events_new RENAME TO events")
    if seq is not None:
        # Ids of deleted events are never handed out again, as before the rebuild.
        kept = db.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'events'", (seq[0],)
        ).rowcount
        if not kept:  # no row was copied, so the new table has no sequence yet
            db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", (seq[0],))
    db.execute("CREATE INDEX events_user ON events(user_id, ts, id)")
    db.execute("CREATE INDEX events_item ON events(item_id)")


@migrations()
def m006_vector_checksums(db: Database) -> None:
    # Each vector carries the CRC-32 of its bytes, and the packed matrix one per row, so
    # bytes damaged in the file are found when read, named by item and never scored.
    # Existing vectors get the checksum of what they hold now; the read still checks
    # that each is finite and of unit length, which no earlier damage survives.
    db.conn.create_function("localrec_crc32", 1, crc32_or_none, deterministic=True)
    for table in ("vectors", "history_vectors"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN checksum INTEGER")
        db.execute(f"UPDATE {table} SET checksum = localrec_crc32(vector)")
    db.execute("ALTER TABLE matrices ADD COLUMN checksums BLOB")
    for model, dim, data in db.execute("SELECT model, dim, data FROM matrices").fetchall():
        rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, 4 * dim)
        db.execute(
            "UPDATE matrices SET checksums = ? WHERE model = ?",
            (row_checksums(rows).tobytes(), model),
        )


SCHEMA_VERSION = len(migrations._migrations)
