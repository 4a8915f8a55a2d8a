"""SQLite's errors about the file or the disk (read-only, full, damaged, locked) as one
`DatabaseError` each that names the file and says what to do, for every statement run on a
`StoreFile`'s connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from localrec.errors import (
    DatabaseCorrupt,
    DatabaseError,
    DatabaseLocked,
    DatabaseReadOnly,
    DiskFull,
)

__all__ = ["GuardedConnection", "raise_as_storage_error", "storage_error"]

# How long a writer waits for the write lock, in all: BUSY_TIMEOUT_S per attempt.
BUSY_TIMEOUT_S = 30.0
RETRIES = 8


def storage_error(path: Path, exc: sqlite3.Error) -> DatabaseError | None:
    """SQLite's error about the file or the disk as one error that names the file and says
    what to do; None for an error of the statement itself (a constraint, a bug)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    where = path.resolve().parent
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return DatabaseReadOnly(
            f"{path}: cannot write: the file or its directory {where} is read-only for this "
            f"user (SQLite also writes {path.name}-wal and {path.name}-shm there). Make both "
            "writable, or work on a copy in a writable directory. Nothing was changed."
        )
    if name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR"):
        return DiskFull(
            f"{path}: could not write ({text}): the disk is full, a file-size limit "
            "(ulimit -f) was reached, or the disk is failing. Nothing of this change was "
            "stored; free some space and run it again."
        )
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return DatabaseCorrupt(
            f"{path}: the database file is damaged ({text}); it is not written to. Restore "
            f"it from a backup, or save what is readable with `sqlite3 {path} .recover | "
            "sqlite3 recovered.db` and use recovered.db."
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return DatabaseLocked(
            f"{path}: the database stayed locked by another process for "
            f"{BUSY_TIMEOUT_S * RETRIES:.0f} s; try again"
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return DatabaseError(
            f"{path}: cannot open the file or create its -wal and -shm files in {where}: "
            "check that the directory exists and that this user may read it (and write it, "
            "to change the database)"
        )
    if name == "SQLITE_NOTADB":
        return DatabaseError(f"{path}: not a usable SQLite database ({text})")
    return None


def raise_as_storage_error(path: Path, exc: sqlite3.Error) -> None:
    """Raise `exc` as what `storage_error` makes of it, else as itself."""
    error = storage_error(path, exc)
    if error is None:
        raise exc
    raise error from None


class GuardedCursor:
    """A cursor whose rows, as they are read, raise storage errors as `DatabaseError`s."""

    def __init__(self, cursor: sqlite3.Cursor, path: Path) -> None:
        self._cursor = cursor
        self._path = path

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._cursor)
        except sqlite3.Error as exc:
            raise_as_storage_error(self._path, exc)
            raise

    def fetchone(self) -> Any:
        try:
            return self._cursor.fetchone()
        except sqlite3.Error as exc:
            raise_as_storage_error(self._path, exc)
            raise

    def fetchall(self) -> list[Any]:
        try:
            return self._cursor.fetchall()
        except sqlite3.Error as exc:
            raise_as_storage_error(self._path, exc)
            raise


class GuardedConnection:
    """The connection, with SQLite's errors about the file or the disk raised as one
    `DatabaseError` each (`storage_error`). A damaged page, once seen, is reported to
    `on_damaged` (its `StoreFile` then refuses writes)."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, on_damaged: Callable[[str], None]
    ) -> None:
        self.raw = conn
        self._path = path
        self._on_damaged = on_damaged

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def _failed(self, exc: sqlite3.Error) -> None:
        error = storage_error(self._path, exc)
        if isinstance(error, DatabaseCorrupt):
            self._on_damaged(str(error))
        if error is None:
            raise exc
        raise error from None

    def execute(self, sql: str, params: Any = ()) -> Any:
        try:
            return GuardedCursor(self.raw.execute(sql, params), self._path)
        except sqlite3.Error as exc:
            self._failed(exc)
            raise

    def executemany(self, sql: str, rows: Any) -> Any:
        try:
            return self.raw.executemany(sql, rows)
        except sqlite3.Error as exc:
            self._failed(exc)
            raise

    def blobopen(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.raw.blobopen(*args, **kwargs)
        except sqlite3.Error as exc:
            self._failed(exc)
            raise
