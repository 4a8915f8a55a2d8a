"""One localrec database file: opening it safely, its schema and migrations, transactions.

Every write runs in one `BEGIN IMMEDIATE` transaction with a busy timeout and retries, so
a crash loses at most the transaction in flight and concurrent writers queue instead of
failing. SQLite's errors about the file or the disk (read-only, full, damaged, locked)
become one `DatabaseError` each, naming the file and what to do. A damaged file refuses
writes: the first write of each connection runs `PRAGMA quick_check` first. `Store`
(store/db.py) builds the catalogue, events and vectors on this.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from localrec.errors import (
    DatabaseCorrupt,
    DatabaseError,
    DatabaseLocked,
    DatabaseReadOnly,
    SchemaError,
)
from localrec.store.guarded import (
    BUSY_TIMEOUT_S,
    RETRIES,
    GuardedConnection,
    raise_as_storage_error,
)

__all__ = ["BUSY_TIMEOUT_S", "MMAP_BYTES", "SCHEMA_VERSION", "StoreFile"]

# The number of migrations in schema.py (a test keeps the two equal). Checking it first
# lets an up-to-date database open without importing sqlite-utils at all.
SCHEMA_VERSION = 6
MMAP_BYTES = 1 << 30


class _ClosedConnection:
    """Stands in for the connection after close(): any use says so, as a LocalrecError."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __getattr__(self, name: str) -> Any:
        raise DatabaseError(f"{self._path}: this database was closed; open it again")


def _wal(path: Path) -> Path:
    return path.with_name(f"{path.name}-wal")


class StoreFile:
    """The connection to one database file, checked and migrated. Safe to open from
    several processes at once."""

    def __init__(self, path: Path | str, *, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        # Why this file refuses writes: it was found damaged (set by the connection).
        self.damaged: str | None = None
        # Opened read-only and immutable, because its directory cannot be written.
        self.immutable = False
        self._checked = False
        self._check_path(create=create, readonly=readonly)
        self._lock = threading.RLock()
        self._conn = self._open()
        try:
            if self.immutable:
                readonly = True
            self._migrate(readonly)
        except BaseException:
            self._conn.close()  # a refused file keeps no connection (and so no -wal/-shm) open
            raise

    def _check_path(self, *, create: bool, readonly: bool) -> None:
        if (readonly or not create) and not self.path.exists():
            raise DatabaseError(
                f"{self.path}: no such database; create it with `localrec add items FILE`"
            )
        if self.path.exists() and self.path.is_dir():
            raise DatabaseError(f"{self.path}: is a directory, not a database file")
        if self.path.is_file() and self.path.stat().st_size == 0 and not _wal(self.path).exists():
            raise DatabaseError(
                f"{self.path}: is an empty file (0 bytes), not a database; delete it to start "
                "a new database there, or choose another path with --db"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"{self.path}: cannot create its directory {self.path.parent} "
                f"({exc.strerror}); choose another path with --db"
            ) from None

    def _open(self) -> Any:
        """The connection, checked by a first read. When the file cannot be opened for
        writing or its -shm created (a read-only directory), it is opened read-only and
        immutable instead: readable, assuming no other process writes it meanwhile."""
        conn = self._connect(str(self.path), uri=False)
        try:
            conn.raw.execute("PRAGMA user_version").fetchone()
            return conn
        except sqlite3.Error as exc:
            conn.close()
            name = getattr(exc, "sqlite_errorname", "") or ""
            if not (
                self.path.is_file() and name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY"))
            ):
                raise_as_storage_error(self.path, exc)
                raise DatabaseError(f"{self.path}: not a usable SQLite database ({exc})") from None
        self.immutable = True
        conn = self._connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        conn.execute("PRAGMA user_version").fetchone()
        return conn

    def _connect(self, target: str, *, uri: bool) -> Any:
        raw: sqlite3.Connection | None = None
        try:
            raw = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            raw.execute("PRAGMA foreign_keys = ON")
            raw.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            # Pages are read through a mapping instead of being copied in one by one.
            raw.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        except sqlite3.Error as exc:
            if raw is not None:
                raw.close()
            raise_as_storage_error(self.path, exc)
            raise DatabaseError(f"{self.path}: not a usable SQLite database ({exc})") from None
        return GuardedConnection(raw, self.path, self._set_damaged)

    def _use_wal(self, readonly: bool) -> None:
        if self.immutable:
            return
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

            db = Database(self._conn.raw, execute_plugins=False)
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

    @contextlib.contextmanager
    def write(self, *, checked: bool = True) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction, retried while another process holds the write lock.

        A damaged file refuses it. With `checked` (all but cache writes), the first write of
        this connection runs `PRAGMA quick_check` first: 0.3 s for a 184 MB database,
        milliseconds for a device's own.
        """
        with self._lock:
            self._refuse_if_damaged(checked)
            for attempt in range(RETRIES):
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    break
                except DatabaseLocked:
                    if attempt == RETRIES - 1:
                        raise
                    time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    # When the disk fails SQLite rolls back on its own: report the first error.
                    with contextlib.suppress(DatabaseError):
                        self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    @contextlib.contextmanager
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

    def _set_damaged(self, why: str) -> None:
        self.damaged = why

    def quick_check(self) -> None:
        """Raise `DatabaseCorrupt` when SQLite's quick check finds the file damaged."""
        with self._lock:
            if self.damaged is None:
                found = [row[0] for row in self._conn.execute("PRAGMA quick_check(3)")]
                if found != ["ok"]:
                    self.damaged = (
                        f"{self.path}: the database file is damaged ({'; '.join(found)}); it "
                        f"is not written to. Restore it from a backup, or save what is "
                        f"readable with `sqlite3 {self.path} .recover | sqlite3 recovered.db` "
                        "and use recovered.db."
                    )
                self._checked = True
            if self.damaged is not None:
                raise DatabaseCorrupt(self.damaged)

    def _refuse_if_damaged(self, checked: bool) -> None:
        if self.immutable:
            raise DatabaseReadOnly(
                f"{self.path}: cannot write: its directory {self.path.resolve().parent} is "
                "read-only for this user, so the database was opened read-only. Make the "
                "directory writable, or work on a copy in a writable directory. Nothing "
                "was changed."
            )
        if checked and not self._checked:
            self.quick_check()
        if self.damaged is not None:
            raise DatabaseCorrupt(self.damaged)
