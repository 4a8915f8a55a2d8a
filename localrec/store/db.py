"""The SQLite store: items, events, vectors and config of one app, behind a small API.

Every write runs in one `BEGIN IMMEDIATE` transaction with a busy timeout and retries, so
a crash loses at most the transaction in flight and concurrent writers queue instead of
failing. Vectors are little-endian float32 BLOBs with their model and dim, as llm and
sqlite-vec store them; the dim is checked on every read.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from localrec.errors import DatabaseError, InputError, NotEncoded, SchemaError

__all__ = ["EventRow", "ItemMatrix", "ItemRow", "Store"]

BUSY_TIMEOUT_S = 30.0
# The number of migrations in schema.py (a test keeps the two equal). Checking it first
# lets an up-to-date database open without importing sqlite-utils at all.
SCHEMA_VERSION = 3
_RETRIES = 8
MMAP_BYTES = 1 << 30
_PACK_CHUNK = 1 << 20
# Joins the ids and domains of a packed matrix; ingest rejects control characters in both.
_SEP = "\x1f"


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
    """One user event as stored; `ts` is None when only the order is known."""

    user_id: str
    item_id: str
    action: str
    value: float | None = None
    ts: float | None = None
    review: str | None = None


@dataclass(frozen=True)
class ItemMatrix:
    """A domain's item vectors for one model: row i is the vector of `ids[i]`."""

    model: str
    domain: str | None
    ids: tuple[str, ...]
    domains: tuple[str, ...]
    matrix: np.ndarray
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def index(self) -> dict[str, int]:
        """Item id -> row, built once per matrix (a million ids take ~1 s to map)."""
        if not self._index and self.ids:
            self._index.update((item_id, i) for i, item_id in enumerate(self.ids))
        return self._index


def vector_to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def blob_to_vector(blob: bytes, dim: int) -> np.ndarray:
    if len(blob) != 4 * dim:
        raise DatabaseError(
            f"a stored vector has {len(blob)} bytes, expected {4 * dim} for dim {dim}"
        )
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class _ClosedConnection:
    """Stands in for the connection after close(): any use says so, as a LocalrecError."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __getattr__(self, name: str) -> Any:
        raise DatabaseError(f"{self._path}: this database was closed; open it again")


class Store:
    """One localrec database file. Safe to open from several processes at once."""

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
        self._matrix_cache: dict[tuple[str, str | None], tuple[int, ItemMatrix]] = {}
        self._count_cache: dict[str | None, tuple[int, int]] = {}
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
        if isinstance(self._conn, _ClosedConnection):
            return
        self._conn.close()
        self._conn = _ClosedConnection(self.path)  # type: ignore[assignment]

    def __enter__(self) -> Store:
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

    # -- config ----------------------------------------------------------------------------

    def config_get(self, key: str, default: str | None = None) -> str | None:
        row = self._conn.execute("SELECT value FROM config WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def config_set(self, key: str, value: str) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO config (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def config_unset(self, key: str) -> bool:
        with self.write() as conn:
            return conn.execute("DELETE FROM config WHERE key = ?", (key,)).rowcount > 0

    def config_items(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT key, value FROM config ORDER BY key").fetchall())

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
        chunk = list(wanted)
        for start in range(0, len(chunk), 500):
            part = chunk[start : start + 500]
            marks = ",".join("?" * len(part))
            found.update(
                row[0] for row in conn.execute(f"SELECT id FROM items WHERE id IN ({marks})", part)
            )
        return wanted - found

    def delete_items(self, ids: Iterable[str]) -> int:
        """Delete items with their events and vectors; returns how many existed."""
        ids = list(ids)
        deleted = 0
        with self.write() as conn:
            for item_id in ids:
                deleted += conn.execute("DELETE FROM items WHERE id = ?", (item_id,)).rowcount
                conn.execute("DELETE FROM vectors WHERE kind = 'item' AND owner = ?", (item_id,))
            self._bump_vectors(conn)
        return deleted

    def forget_user(self, user_id: str) -> int:
        """Remove every event and vector of one user; returns the number of rows deleted."""
        with self.write() as conn:
            n = conn.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
            n += conn.execute(
                "DELETE FROM vectors WHERE kind = 'user' AND owner = ?", (user_id,)
            ).rowcount
            # `eval`'s cache of history-text vectors is keyed by the text's hash, not by a
            # user, so it cannot be split by user: it is only a cache, drop all of it.
            conn.execute("DELETE FROM vectors WHERE kind = 'user' AND owner = content_hash")
        for backup in sorted(self.path.parent.glob(f"{self.path.name}.bak-*")):
            _forget_in_backup(backup, user_id)
        return n

    def vacuum(self) -> None:
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def get_items(self, ids: Sequence[str]) -> dict[str, ItemRow]:
        out: dict[str, ItemRow] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            for row in self._conn.execute(
                f"SELECT id, domain, title, fields, attributes FROM items WHERE id IN ({marks})",
                part,
            ):
                out[row[0]] = _item_row(row)
        return out

    def iter_items(self, domain: str | None = None, batch: int = 2000) -> Iterator[ItemRow]:
        """All items (of one domain), in insertion order, read in batches."""
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
        return [
            r[0] for r in self._conn.execute("SELECT DISTINCT domain FROM items ORDER BY domain")
        ]

    def is_empty(self) -> bool:
        """No items, events or settings: nothing a user stored."""
        return not any(
            self._conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
            for table in ("items", "events", "config")
        )

    def unencoded_items(self, model: str, matrix: ItemMatrix) -> int:
        """How many items of the matrix's domain have no vector of `model` in it."""
        if self.packed_is_current(model):
            # A whole-catalogue encode writes the packed copy, and any item change since
            # makes it stale: so every item has a vector, and the count (~40 ms for a
            # million items) is not needed.
            return 0
        # Item changes bump the vectors generation too, so a count of that generation holds.
        cached = self._count_cache.get(matrix.domain)
        if cached is None or cached[0] != self.vectors_generation():
            where, args = ("WHERE domain = ?", (matrix.domain,)) if matrix.domain else ("", ())
            with self.snapshot() as conn:
                generation = self.vectors_generation()
                row = conn.execute(f"SELECT count(*) FROM items {where}", args).fetchone()
            cached = (generation, int(row[0]))
            self._count_cache[matrix.domain] = cached
        return cached[1] - len(matrix.ids)

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
    ) -> list[tuple[EventRow, str]]:
        """A user's events, oldest first, each with its item's domain."""
        sql = (
            "SELECT e.user_id, e.item_id, e.action, e.value, e.ts, e.review, i.domain "
            "FROM events e JOIN items i ON i.id = e.item_id WHERE e.user_id = ?"
        )
        params: list[Any] = [user_id]
        if domains:
            sql += f" AND i.domain IN ({','.join('?' * len(domains))})"
            params.extend(domains)
        sql += " ORDER BY coalesce(e.ts, 0), e.id"
        return [(EventRow(*row[:6]), row[6]) for row in self._conn.execute(sql, params)]

    def users(self) -> list[str]:
        return [
            r[0] for r in self._conn.execute("SELECT DISTINCT user_id FROM events ORDER BY user_id")
        ]

    def user_sequences(self) -> dict[str, list[tuple[str, str, float | None]]]:
        """Every user's events as (item, action, value), oldest first."""
        out: dict[str, list[tuple[str, str, float | None]]] = {}
        for user, item, action, value in self._conn.execute(
            "SELECT user_id, item_id, action, value FROM events "
            "ORDER BY user_id, coalesce(ts, 0), id"
        ):
            out.setdefault(user, []).append((item, action, value))
        return out

    def popularity(self, domain: str | None = None) -> dict[str, int]:
        sql = "SELECT e.item_id, count(*) FROM events e"
        params: list[Any] = []
        if domain is not None:
            sql += " JOIN items i ON i.id = e.item_id WHERE i.domain = ?"
            params.append(domain)
        sql += " GROUP BY e.item_id"
        return {row[0]: int(row[1]) for row in self._conn.execute(sql, params)}

    def stats(self) -> dict[str, Any]:
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

    # -- vectors ---------------------------------------------------------------------------

    def _bump_vectors(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE state SET value = value + 1 WHERE key = 'vectors'")

    def vectors_generation(self) -> int:
        row = self._conn.execute("SELECT value FROM state WHERE key = 'vectors'").fetchone()
        return int(row[0])

    def vector_hashes(self, model: str, kind: str = "item") -> dict[str, str]:
        return dict(
            self._conn.execute(
                "SELECT owner, content_hash FROM vectors WHERE kind = ? AND model = ?",
                (kind, model),
            ).fetchall()
        )

    def put_vectors(
        self,
        conn: sqlite3.Connection,
        model: str,
        owners: Sequence[str],
        hashes: Sequence[str],
        vectors: np.ndarray,
        kind: str = "item",
    ) -> None:
        """Store vectors inside the caller's write transaction."""
        if vectors.ndim != 2 or vectors.shape[0] != len(owners):
            raise ValueError("one vector per owner is required")
        dim = int(vectors.shape[1])
        data = np.ascontiguousarray(vectors, dtype="<f4")
        conn.executemany(
            "INSERT INTO vectors (kind, owner, model, dim, content_hash, vector) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(kind, owner, model) DO UPDATE SET "
            "dim = excluded.dim, content_hash = excluded.content_hash, vector = excluded.vector",
            [
                (kind, owner, model, dim, h, data[i].tobytes())
                for i, (owner, h) in enumerate(zip(owners, hashes, strict=True))
            ],
        )
        if kind == "item":
            self._bump_vectors(conn)

    def item_matrix(
        self, model: str, domain: str | None = None, dim: int | None = None
    ) -> ItemMatrix:
        """All item vectors of a domain (or every domain) for a model, in one read.

        From the packed copy when it is current (one BLOB read in 1 MB pieces), else from
        one row per vector. Cached until any vector changes.
        """
        key = (model, domain)
        generation = self.vectors_generation()
        cached = self._matrix_cache.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        with self.snapshot() as conn:
            generation = self.vectors_generation()
            packed = self._read_packed(conn, model, generation)
            if packed is None:
                result = self._read_rows(conn, model, domain)
            else:
                result = _select_domain(packed, domain)
        if dim is not None and result.matrix.shape[1] != dim:
            raise DatabaseError(
                f"{self.path}: vectors of model {model!r} have {result.matrix.shape[1]} "
                f"dimensions but the model has {dim}; re-encode with "
                f"`localrec encode --model {model} --force`"
            )
        self._matrix_cache[key] = (generation, result)
        return result

    def _read_rows(self, conn: sqlite3.Connection, model: str, domain: str | None) -> ItemMatrix:
        # Items drive the join (CROSS JOIN keeps that order), so rowid order needs no sort.
        # Joined the other way, SQLite sorted every BLOB in a temp B-tree, which spills to a
        # temp file past cache_size: half of a cold load at 100k vectors.
        sql = (
            "SELECT i.id, i.domain, v.dim, v.vector FROM items i CROSS JOIN vectors v "
            "ON v.kind = 'item' AND v.owner = i.id AND v.model = ?"
        )
        params: list[Any] = [model]
        if domain is not None:
            sql += " WHERE i.domain = ?"
            params.append(domain)
        sql += " ORDER BY i.rowid"
        rows = conn.execute(sql, params).fetchall()
        if not rows:
            raise NotEncoded(
                f"no vectors for model {model!r}"
                + (f" in domain {domain!r}" if domain else "")
                + f"; run `localrec encode --model {model}`"
            )
        ids, domains, dims, blobs = zip(*rows, strict=True)
        stored_dim = int(dims[0])
        if any(d != stored_dim for d in dims):
            raise DatabaseError(f"{self.path}: vectors of model {model!r} have mixed dimensions")
        raw = b"".join(blobs)
        if len(raw) != 4 * stored_dim * len(ids):
            raise DatabaseError(f"{self.path}: a stored vector of {model!r} has the wrong length")
        matrix = np.frombuffer(raw, dtype="<f4").reshape(len(ids), stored_dim)
        return ItemMatrix(model, domain, tuple(ids), tuple(domains), matrix)

    def _read_packed(
        self, conn: sqlite3.Connection, model: str, generation: int
    ) -> ItemMatrix | None:
        row = conn.execute(
            "SELECT rowid, generation, dim, ids, domains FROM matrices WHERE model = ?", (model,)
        ).fetchone()
        if row is None or row[1] != generation:
            return None
        rowid, _, dim, ids_text, domains_text = row
        ids = tuple(ids_text.split(_SEP))
        domains = tuple(domains_text.split(_SEP))
        with conn.blobopen("matrices", "data", rowid, readonly=True) as blob:
            size = len(blob)
            if size != 4 * dim * len(ids) or len(domains) != len(ids):
                raise DatabaseError(f"{self.path}: the packed matrix of {model!r} is damaged")
            # Read into numpy's own buffer: one bytes object of the whole matrix would
            # cost a second copy and a page fault per 4 kB.
            out = np.empty(size, dtype=np.uint8)
            for offset in range(0, size, _PACK_CHUNK):
                piece = blob.read(_PACK_CHUNK)
                out[offset : offset + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
        matrix = out.view("<f4").reshape(len(ids), dim)
        matrix.flags.writeable = False
        return ItemMatrix(model, None, ids, domains, matrix)

    def packed_is_current(self, model: str) -> bool:
        row = self._conn.execute(
            "SELECT generation FROM matrices WHERE model = ?", (model,)
        ).fetchone()
        return row is not None and int(row[0]) == self.vectors_generation()

    def pack_matrix(self, model: str) -> bool:
        """Store the model's whole item matrix as one BLOB, so cold loads skip the join.

        Call after encoding. Returns False, writing nothing, when there are no vectors or
        they changed while the matrix was read.
        """
        with self.snapshot() as conn:
            generation = self.vectors_generation()
            try:
                full = self._read_rows(conn, model, None)
            except NotEncoded:
                return False
        data = np.ascontiguousarray(full.matrix, dtype="<f4").view(np.uint8).reshape(-1)
        with self.write() as conn:
            if self.vectors_generation() != generation:
                return False
            conn.execute(
                "INSERT INTO matrices (model, generation, dim, ids, domains, data) "
                "VALUES (?, ?, ?, ?, ?, zeroblob(?)) ON CONFLICT(model) DO UPDATE SET "
                "generation = excluded.generation, dim = excluded.dim, ids = excluded.ids, "
                "domains = excluded.domains, data = excluded.data",
                (
                    model,
                    generation,
                    full.matrix.shape[1],
                    _SEP.join(full.ids),
                    _SEP.join(full.domains),
                    len(data),
                ),
            )
            rowid = conn.execute("SELECT rowid FROM matrices WHERE model = ?", (model,)).fetchone()
            with conn.blobopen("matrices", "data", rowid[0]) as blob:
                for offset in range(0, len(data), _PACK_CHUNK):
                    blob.write(data[offset : offset + _PACK_CHUNK].tobytes())
        return True

    def item_vectors(self, model: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of a few items, by id (no full-matrix read)."""
        out: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            for owner, dim, blob in self._conn.execute(
                "SELECT owner, dim, vector FROM vectors WHERE kind = 'item' AND model = ? "
                f"AND owner IN ({marks})",
                [model, *part],
            ):
                out[owner] = blob_to_vector(blob, int(dim))
        return out

    def has_adapter(self, model: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM adapters WHERE model = ? LIMIT 1", (model,))
        return row.fetchone() is not None

    def user_vector(self, user_id: str, model: str, digest: str) -> np.ndarray | None:
        """A cached history-text vector of a stored user, if its text has not changed."""
        row = self._conn.execute(
            "SELECT dim, vector FROM vectors WHERE kind = 'user' AND owner = ? AND model = ? "
            "AND content_hash = ?",
            (user_id, model, digest),
        ).fetchone()
        return blob_to_vector(row[1], int(row[0])) if row else None

    def put_user_vector(self, user_id: str, model: str, digest: str, vector: np.ndarray) -> None:
        with self.write() as conn:
            self.put_vectors(conn, model, [user_id], [digest], vector.reshape(1, -1), kind="user")

    def models_with_vectors(self) -> list[str]:
        return [
            r[0] for r in self._conn.execute("SELECT DISTINCT model FROM vectors ORDER BY model")
        ]

    # -- adapters --------------------------------------------------------------------------

    def put_adapter(self, model: str, name: str, meta: dict[str, Any], payload: bytes) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO adapters (model, name, created_at, meta, payload) "
                "VALUES (?, ?, datetime('now'), ?, ?) ON CONFLICT(model, name) DO UPDATE SET "
                "created_at = excluded.created_at, meta = excluded.meta, "
                "payload = excluded.payload",
                (model, name, json.dumps(meta), payload),
            )

    def get_adapter(self, model: str, name: str) -> tuple[dict[str, Any], bytes] | None:
        row = self._conn.execute(
            "SELECT meta, payload FROM adapters WHERE model = ? AND name = ?", (model, name)
        ).fetchone()
        return (json.loads(row[0]), bytes(row[1])) if row else None

    def integrity_check(self) -> str:
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])


def _select_domain(full: ItemMatrix, domain: str | None) -> ItemMatrix:
    if domain is None:
        return full
    mask = np.asarray(full.domains) == domain
    if not mask.any():
        raise NotEncoded(
            f"no vectors for model {full.model!r} in domain {domain!r}; "
            f"run `localrec encode --model {full.model}`"
        )
    rows = np.flatnonzero(mask)
    matrix = full.matrix[rows]
    matrix.flags.writeable = False
    ids = tuple(full.ids[r] for r in rows)
    return ItemMatrix(full.model, domain, ids, (domain,) * len(ids), matrix)


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
        conn.execute("VACUUM")
    finally:
        conn.close()


def copy_database(src: Path, dst: Path) -> None:
    shutil.copy(src, dst)
