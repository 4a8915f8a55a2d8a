"""One localrec database file: opening it safely, its schema and migrations, transactions.

Every write runs in one `BEGIN IMMEDIATE` transaction with a busy timeout and retries, so
a crash loses at most the transaction in flight and concurrent writers queue instead of
failing. `Store` (store/db.py) builds the catalogue, events and vectors on this.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from localrec.errors import DatabaseError, SchemaError

__all__ = ["BUSY_TIMEOUT_S", "MMAP_BYTES", "SCHEMA_VERSION", "StoreFile"]

BUSY_TIMEOUT_S = 30.0
# The number of migrations in schema.py (a test keeps the two equal). Checking it first
# lets an up-to-date database open without importing sqlite-utils at all.
SCHEMA_VERSION = 5
_RETRIES = 8
MMAP_BYTES = 1 << 30


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class _ClosedConnection:
    """Stands in for the connection after close(): any use says so, as a LocalrecError."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __getattr__(self, name: str) -> Any:
        raise DatabaseError(f"{self._path}: this database was closed; open it again")


class StoreFile:
    """The connection to one database file, checked and migrated. Safe to open from
    several processes at once."""

    def __init__(self, path: Path | str, *, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        if (readonly or not create) and not self.path.exists():
            raise DatabaseError(
                f"{self.path}: no such database; create it with `localrec add items FILE`"
            )
        if self.path.exists() and self.path.is_dir():
            raise DatabaseError(f"{self.path}: is a directory, not a database file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            self._conn = conn
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            # Pages are read through a mapping instead of being copied in one by one.
            conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise DatabaseError(f"{self.path}: not a usable SQLite database ({exc})") from None
        self._lock = threading.RLock()
        try:
            self._migrate(readonly)
        except BaseException:
            conn.close()  # a refused file keeps no connection (and so no -wal/-shm) open
            raise

    def _use_wal(self, readonly: bool) -> None:
        try:
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal" and not readonly:
                raise DatabaseError(f"{self.path}: cannot switch the database to WAL mode")
            self._conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{self.path}: not a usable SQLite database ({exc})") from None

    # -- lifecycle and schema --------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; a later use raises `DatabaseError`. Closing twice is fine."""
        if isinstance(self._conn, _ClosedConnection):
            return
        self._conn.close()
        self._conn = _ClosedConnection(self.path)  # type: ignore[assignment]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self, readonly: bool) -> None:
        """Check the schema read-only, then switch to WAL, then upgrade. A newer or foreign
        file is refused before anything is written: even the switch to WAL rewrites the
        file header."""
        try:
            if self._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                self._use_wal(readonly)
                return
            from sqlite_utils import Database

            from localrec.store.schema import migrations

            db = Database(self._conn, execute_plugins=False)
            applied = [m.name for m in migrations.applied(db)]
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{self.path}: not a usable SQLite database ({exc})") from None
        known = [m.name for m in migrations._migrations]
        unknown = [name for name in applied if name not in known]
        user_version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if unknown or user_version > SCHEMA_VERSION:
            raise SchemaError(
                f"{self.path}: written by a newer localrec (schema version "
                f"{max(user_version, len(applied))}, this localrec knows {SCHEMA_VERSION}); "
                "upgrade localrec to use it. The database was not changed."
            )
        if not applied and self._has_foreign_tables():
            raise SchemaError(
                f"{self.path}: this SQLite file is not a localrec database; "
                "choose another path with --db"
            )
        self._use_wal(readonly)
        pending = migrations.pending(db)
        if not pending:
            return
        if readonly:
            raise SchemaError(f"{self.path}: needs a schema upgrade; open it once read-write")
        if applied:
            self._backup(f"schema{len(applied)}")
        with self.write():
            migrations.apply(db)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _has_foreign_tables(self) -> bool:
        names = {
            row[0]
            for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        return bool(names - {"_sqlite_migrations", "sqlite_sequence"})

    def _backup(self, label: str) -> Path:
        target = self.path.with_name(f"{self.path.name}.bak-{label}")
        if target.exists():
            target = self.path.with_name(f"{self.path.name}.bak-{label}-{int(time.time())}")
        backup = sqlite3.connect(str(target))
        try:
            self._conn.backup(backup)
        finally:
            backup.close()
        return target

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction, retried while another process holds the write lock."""
        with self._lock:
            for attempt in range(_RETRIES):
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if not _is_locked(exc) or attempt == _RETRIES - 1:
                        raise DatabaseError(
                            f"{self.path}: the database stayed locked by another process "
                            f"for {BUSY_TIMEOUT_S * _RETRIES:.0f} s; try again"
                        ) from None
                    time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        with self._lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    # -- maintenance -----------------------------------------------------------------------

    def vacuum(self) -> None:
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def integrity_check(self) -> str:
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])
