"""The SQLite store: items, events, vectors and config of one app, behind a small API.

`Store` is the catalogue, the events and the settings, on top of the vector tables
(store/vectors.py) and the checked, migrated connection (store/connection.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localrec.errors import DatabaseError, InputError
from localrec.paths import as_path
from localrec.store.connection import BUSY_TIMEOUT_S, MMAP_BYTES, SCHEMA_VERSION
from localrec.store.vectors import ItemMatrix, VectorStore, in_chunks

__all__ = [
    "BUSY_TIMEOUT_S",
    "MMAP_BYTES",
    "SCHEMA_VERSION",
    "DeleteReport",
    "EventRow",
    "ItemMatrix",
    "ItemRow",
    "Store",
    "open_for_write",
    "require_store",
]


# The prefix of the state table's counts that hold for one vectors generation.
_COUNT = "count:"


@dataclass(frozen=True)
class ItemRow:
    """One catalogue item as stored."""

    id: str
    domain: str
    title: str
    fields: dict[str, str]
    attributes: dict[str, Any]


@dataclass(frozen=True)
class EventRow:
    """One user event as stored. `ingest` gives every new event a time (the time it was
    stored when the input gives none); `ts` is None only in rows stored before that."""

    user_id: str
    item_id: str
    action: str
    value: float | None = None
    ts: float | None = None
    review: str | None = None


@dataclass(frozen=True)
class DeleteReport:
    """What `Store.delete_items` did: how many items it deleted, and the ids that were not
    in the catalogue (each once, in the order given)."""

    deleted: int
    unknown: tuple[str, ...]


class Store(VectorStore):
    """One localrec database file. Safe to open from several processes at once.

    Use it as a context manager (or call `close`). A database written by an older
    localrec is copied to `*.bak-schemaN` and migrated; a newer one is refused untouched.

    Args:
        path: The database file.
        create: Create the file if it does not exist; False raises `DatabaseError`.
        readonly: Open it for reading only (it must exist).
    """

    def __init__(self, path: Path | str, *, create: bool = True, readonly: bool = False) -> None:
        checked = as_path(path, "the database")
        for name, flag in (("create", create), ("readonly", readonly)):
            if not isinstance(flag, bool):
                raise InputError(f"{name} must be True or False, got {flag!r:.40}")
        super().__init__(checked, create=create, readonly=readonly)

    # -- config ----------------------------------------------------------------------------

    def config_get(self, key: str, default: str | None = None) -> str | None:
        """The value of a configuration key (such as `template.books`), or `default`."""
        row = self._conn.execute("SELECT value FROM config WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def config_set(self, key: str, value: str) -> None:
        """Set a configuration key, replacing its value, as it is
        (`localrec.store.config.set_config` checks it first)."""
        if not isinstance(key, str) or not isinstance(value, str):
            raise InputError(
                f"a configuration key and value are text, got {key!r:.40}={value!r:.40}"
            )
        with self.write() as conn:
            conn.execute(
                "INSERT INTO config (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def config_unset(self, key: str) -> bool:
        """Remove a configuration key; whether it was set."""
        with self.write() as conn:
            return conn.execute("DELETE FROM config WHERE key = ?", (key,)).rowcount > 0

    def config_items(self) -> dict[str, str]:
        """Every configuration key and its value."""
        return dict(self._conn.execute("SELECT key, value FROM config ORDER BY key").fetchall())

    # -- counts kept for one vectors generation ---------------------------------------------

    def generation_count(self, key: str) -> int | None:
        """A count stored with `put_generation_count` for the current vectors generation."""
        row = self._conn.execute(
            "SELECT value FROM state WHERE key = ?", (f"{_COUNT}{self.vectors_generation()}:{key}",)
        ).fetchone()
        return int(row[0]) if row else None

    def put_generation_count(self, key: str, value: int, generation: int) -> bool:
        """Keep a count worked out at vectors `generation` (dropping those of earlier ones),
        if the generation is still current. A cache: it never waits for another writer, and
        a database it cannot write to (read-only) keeps nothing. Returns whether it kept it."""
        with self._lock:
            if self.immutable or self.damaged is not None:
                return False
            try:
                self._conn.execute("PRAGMA busy_timeout = 0")
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                finally:
                    self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            except (sqlite3.Error, DatabaseError):  # the store's connection raises the latter
                return False
            try:
                kept = self.vectors_generation() == generation
                if kept:
                    self._conn.execute(
                        "DELETE FROM state WHERE key LIKE ? AND key NOT LIKE ?",
                        (f"{_COUNT}%", f"{_COUNT}{generation}:%"),
                    )
                    self._conn.execute(
                        "INSERT INTO state (key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (f"{_COUNT}{generation}:{key}", int(value)),
                    )
                self._conn.execute("COMMIT")
                return kept
            except (sqlite3.Error, DatabaseError):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                return False

    # -- items and events ------------------------------------------------------------------

    def upsert_items(self, conn: sqlite3.Connection, rows: Sequence[ItemRow]) -> None:
        """Insert or update items inside the caller's write transaction."""
        conn.executemany(
            "INSERT INTO items (id, domain, title, fields, attributes) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET domain = excluded.domain, title = excluded.title, "
            "fields = excluded.fields, attributes = excluded.attributes",
            [
                (
                    r.id,
                    r.domain,
                    r.title,
                    json.dumps(r.fields, ensure_ascii=False),
                    json.dumps(r.attributes, ensure_ascii=False, default=str),
                )
                for r in rows
            ],
        )
        # A domain can change without the text: matrices (cached or packed) join domains.
        self._bump_vectors(conn)

    def insert_events(self, conn: sqlite3.Connection, rows: Sequence[EventRow]) -> None:
        conn.executemany(
            "INSERT INTO events (user_id, item_id, action, value, ts, review) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(r.user_id, r.item_id, r.action, r.value, r.ts, r.review) for r in rows],
        )

    def missing_items(self, conn: sqlite3.Connection, ids: Iterable[str]) -> set[str]:
        wanted = set(ids)
        found: set[str] = set()
        for part, marks in in_chunks(list(wanted)):
            found.update(
                row[0] for row in conn.execute(f"SELECT id FROM items WHERE id IN ({marks})", part)
            )
        return wanted - found

    def delete_items(self, ids: Iterable[str]) -> DeleteReport:
        """Delete items with their events and vectors, in one transaction; the report
        names the ids that were not in the catalogue. Events on an id that is not in the
        catalogue (an item of a pack) are kept."""
        ids = _ids(ids, "delete_items")
        deleted: set[str] = set()
        unknown: dict[str, None] = {}
        with self.write() as conn:
            for item_id in ids:
                if conn.execute("DELETE FROM items WHERE id = ?", (item_id,)).rowcount:
                    deleted.add(item_id)
                    # Events have no foreign key (schema 5), so no cascade deletes them.
                    conn.execute("DELETE FROM events WHERE item_id = ?", (item_id,))
                elif item_id not in deleted:
                    unknown[item_id] = None
                conn.execute("DELETE FROM vectors WHERE kind = 'item' AND owner = ?", (item_id,))
            self._bump_vectors(conn)
        return DeleteReport(len(deleted), tuple(unknown))

    def forget_user(self, user_id: str) -> int:
        """Remove every event and vector of one user, here and in the database's
        pre-migration backups, then VACUUM, so that the user's bytes are gone from the
        files, not only from the tables. Returns the number of rows deleted here."""
        if not isinstance(user_id, str):
            raise InputError(f"a user id is a string, got {user_id!r:.60}")
        with self.write() as conn:
            n = conn.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
            n += conn.execute(
                "DELETE FROM vectors WHERE kind = 'user' AND owner = ?", (user_id,)
            ).rowcount
        for backup in sorted(self.path.parent.glob(f"{self.path.name}.bak-*")):
            _forget_in_backup(backup, user_id)
        if n:  # nothing deleted here: nothing to vacuum, and the file stays as it was
            self.vacuum()
        return n

    def get_items(self, ids: Sequence[str]) -> dict[str, ItemRow]:
        """The items of these ids that are in the catalogue, by id."""
        ids = _ids(ids, "get_items")
        out: dict[str, ItemRow] = {}
        for part, marks in in_chunks(ids):
            for row in self._conn.execute(
                f"SELECT id, domain, title, fields, attributes FROM items WHERE id IN ({marks})",
                part,
            ):
                out[row[0]] = _item_row(row)
        return out

    def iter_items(self, domain: str | None = None, batch: int = 2000) -> Iterator[ItemRow]:
        """All items (of one domain), in insertion order, read in batches."""
        if domain is not None and not isinstance(domain, str):
            raise InputError(f"a domain is a name, got {domain!r:.40}")
        last = 0
        where = "AND domain = ?" if domain is not None else ""
        while True:
            params: list[Any] = [last]
            if domain is not None:
                params.append(domain)
            rows = self._conn.execute(
                "SELECT rowid, id, domain, title, fields, attributes FROM items "
                f"WHERE rowid > ? {where} ORDER BY rowid LIMIT {batch}",
                params,
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _item_row(row[1:])
            last = rows[-1][0]

    def domains(self) -> list[str]:
        """The domains of the stored items, sorted."""
        return [
            r[0] for r in self._conn.execute("SELECT DISTINCT domain FROM items ORDER BY domain")
        ]

    def is_empty(self) -> bool:
        """No items, events or settings: nothing a user stored."""
        return not any(
            self._conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
            for table in ("items", "events", "config")
        )

    def require_domain(self, domain: str) -> None:
        found = self._conn.execute(
            "SELECT 1 FROM items WHERE domain = ? LIMIT 1", (domain,)
        ).fetchone()
        if found:
            return
        known = self.domains()
        if domain not in known:
            raise InputError(
                f"unknown domain {domain!r}; the database has: {', '.join(known) or 'no items yet'}"
            )

    def user_events(
        self, user_id: str, domains: Sequence[str] | None = None
    ) -> list[tuple[EventRow, str | None]]:
        """A user's events, oldest first, each with its item's domain.

        The domain is None for an event whose item is not in this database's items (an
        item of a pack: the caller resolves it there). With `domains`, the filter runs
        here on this database's items, so such events are left out.
        """
        if not isinstance(user_id, str):
            raise InputError(f"a user id is a string, got {user_id!r:.60}")
        sql = (
            "SELECT e.user_id, e.item_id, e.action, e.value, e.ts, e.review, i.domain "
            "FROM events e LEFT JOIN items i ON i.id = e.item_id WHERE e.user_id = ?"
        )
        params: list[Any] = [user_id]
        if domains:
            sql += f" AND i.domain IN ({','.join('?' * len(domains))})"
            params.extend(domains)
        sql += " ORDER BY coalesce(e.ts, 0), e.id"
        return [(EventRow(*row[:6]), row[6]) for row in self._conn.execute(sql, params)]

    def users(self, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` users with their number of events, the most recently active first."""
        return [
            (str(user), int(n))
            for user, n in self._conn.execute(
                "SELECT user_id, count(*) FROM events GROUP BY user_id "
                "ORDER BY max(coalesce(ts, 0)) DESC, user_id LIMIT ?",
                (limit,),
            )
        ]

    def user_sequences(
        self, users: Container[str] | None = None
    ) -> dict[str, list[tuple[str, str, float | None]]]:
        """Every user's events (or only those of `users`) as (item, action, value), oldest
        first, users in `user_ids` order."""
        out: dict[str, list[tuple[str, str, float | None]]] = {}
        for user, item, action, value in self._conn.execute(
            "SELECT user_id, item_id, action, value FROM events "
            "ORDER BY user_id, coalesce(ts, 0), id"
        ):
            if users is None or user in users:
                out.setdefault(user, []).append((item, action, value))
        return out

    def user_ids(self) -> list[str]:
        """Every user with events, in `user_sequences` order."""
        sql = "SELECT DISTINCT user_id FROM events ORDER BY user_id"
        return [str(row[0]) for row in self._conn.execute(sql)]

    def event_items(self, user_id: str | None = None) -> dict[str, int]:
        """The number of events per item id, of one user or of all users, whether or not
        the item is in this database's items (so a caller can count those that are not)."""
        if user_id is None:
            return self._events_per_item("")
        return self._events_per_item("WHERE e.user_id = ?", user_id)

    def popularity(self, domain: str | None = None) -> dict[str, int]:
        if domain is None:
            return self._events_per_item("")
        return self._events_per_item("JOIN items i ON i.id = e.item_id WHERE i.domain = ?", domain)

    def _events_per_item(self, where: str, *params: str) -> dict[str, int]:
        sql = f"SELECT e.item_id, count(*) FROM events e {where} GROUP BY e.item_id"
        return {row[0]: int(row[1]) for row in self._conn.execute(sql, params)}

    def stats(self) -> dict[str, Any]:
        """Counts of items (per domain), events, users and vectors (per model), as
        `localrec stats --json` prints them, after SQLite's quick check of the whole file
        (a damaged file raises `DatabaseCorrupt`)."""
        self.quick_check()
        with self.snapshot() as conn:
            items = dict(
                conn.execute(
                    "SELECT domain, count(*) FROM items GROUP BY domain ORDER BY domain"
                ).fetchall()
            )
            events = conn.execute("SELECT count(*), count(DISTINCT user_id) FROM events").fetchone()
            vectors = dict(
                conn.execute(
                    "SELECT model, count(*) FROM vectors WHERE kind = 'item' "
                    "GROUP BY model ORDER BY model"
                ).fetchall()
            )
        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "items": items,
            "items_total": sum(items.values()),
            "users": int(events[1]),
            "events": int(events[0]),
            "vectors": vectors,
        }


def require_store(value: object) -> Store:
    """`value`, which a Python caller must give as a Store (InputError otherwise)."""
    if not isinstance(value, Store):
        raise InputError(f"store must be a localrec Store, got {value!r:.60}")
    return value


def _ids(ids: Iterable[str], what: str) -> list[str]:
    """A caller's item ids, as a list; one id alone (a str) or a non-iterable is refused."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        raise InputError(f"{what} takes a list of item ids, got {ids!r:.60}")
    out = list(ids)
    bad = [i for i in out if not isinstance(i, str)]
    if bad:
        raise InputError(f"{what}: an item id is a string, got {bad[0]!r:.60}")
    return out


def _item_row(row: Sequence[Any]) -> ItemRow:
    return ItemRow(
        id=row[0],
        domain=row[1],
        title=row[2],
        fields=json.loads(row[3]),
        attributes=json.loads(row[4]),
    )


def _forget_in_backup(path: Path, user_id: str) -> None:
    """Delete a user's rows from a pre-migration backup too, and VACUUM it."""
    conn = sqlite3.connect(str(path))
    try:
        with conn:
            conn.execute("DELETE FROM events WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM vectors WHERE kind = 'user' AND owner = ?", (user_id,))
            # A backup from before schema 4 may hold `eval`'s history-text cache as user
            # vectors owned by their content hash: vectors of users' histories, this
            # user's among them, which the migration dropped from the database itself.
            conn.execute("DELETE FROM vectors WHERE kind = 'user' AND owner = content_hash")
        conn.execute("VACUUM")
    finally:
        conn.close()


@contextmanager
def open_for_write(path: Path | str) -> Iterator[Store]:
    """The database at `path`, created if it is missing, for a block that writes to it.

    When the block fails and this call created the file, the file (with its -wal and
    -shm) is removed again, unless something was stored in it meanwhile, say by another
    process: so a failed first import leaves no empty database behind.
    """
    path = Path(path)
    existed = path.exists()
    try:
        with Store(path) as store:
            yield store
    except Exception:
        if not existed and _still_empty(path):
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
        raise


def _still_empty(path: Path) -> bool:
    try:
        with Store(path, create=False) as store:
            return store.is_empty()
    except Exception:
        return False
