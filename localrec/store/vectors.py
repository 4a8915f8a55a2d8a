"""Vectors in the database: item vectors, the packed item matrix, stored users' vectors,
eval's history-text cache and the tuned adapters' blobs.

Vectors are little-endian float32 BLOBs with their model and dim, as llm and sqlite-vec
store them; the dim is checked on every read. Each carries the CRC-32 of its bytes (the
packed matrix one per row): a vector whose bytes changed in the file, or that is not
finite and of unit length, is never scored.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from localrec.embedding.llama_encoder import off_unit_rows
from localrec.errors import DatabaseError, NotEncoded
from localrec.store.checksums import damaged_rows
from localrec.store.connection import StoreFile

__all__ = [
    "ItemMatrix",
    "VectorKind",
    "VectorStore",
    "blob_to_vector",
    "in_chunks",
    "read_blob",
]

# Item vectors are the catalogue's; user vectors belong to one stored user, by id.
VectorKind = Literal["item", "user"]
_PACK_CHUNK = 1 << 20
# Joins the ids and domains of a packed matrix; ingest rejects control characters in both.
_SEP = "\x1f"
# Ids per `IN (...)` query: well below SQLite's limit on bound parameters.
_IN_CHUNK = 500


def in_chunks(values: Sequence[str]) -> Iterator[tuple[list[str], str]]:
    """`values` in pieces small enough for one `IN (...)`, each with its `?` marks."""
    for start in range(0, len(values), _IN_CHUNK):
        part = list(values[start : start + _IN_CHUNK])
        yield part, ",".join("?" * len(part))


@dataclass(frozen=True)
class ItemMatrix:
    """A domain's item vectors for one model: row i is the vector of `ids[i]`."""

    model: str
    domain: str | None
    ids: tuple[str, ...]
    domains: tuple[str, ...]
    matrix: np.ndarray
    # Items whose stored vector was damaged (its checksum does not match, or it is not
    # finite and of unit length): left out.
    damaged: tuple[str, ...] = ()
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def index(self) -> dict[str, int]:
        """Item id -> row, built once per matrix (a million ids take ~1 s to map)."""
        if not self._index and self.ids:
            self._index.update((item_id, i) for i, item_id in enumerate(self.ids))
        return self._index


def read_blob(blob: sqlite3.Blob) -> np.ndarray:
    """An open BLOB's bytes in numpy's own buffer, read in 1 MB pieces: one bytes object of
    a whole matrix would cost a second copy and a page fault per 4 kB."""
    size = len(blob)
    out = np.empty(size, dtype=np.uint8)
    for offset in range(0, size, _PACK_CHUNK):
        piece = blob.read(_PACK_CHUNK)
        out[offset : offset + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
    return out


def blob_to_vector(blob: bytes, dim: int) -> np.ndarray:
    if len(blob) != 4 * dim:
        raise DatabaseError(
            f"a stored vector has {len(blob)} bytes, expected {4 * dim} for dim {dim}"
        )
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def _intact_vector(blob: bytes, dim: int, checksum: int | None) -> np.ndarray | None:
    """One stored vector, or None when its bytes were damaged in the file."""
    if checksum is not None and zlib.crc32(blob) != checksum:
        return None
    vector = blob_to_vector(blob, dim)
    return None if off_unit_rows(vector.reshape(1, -1))[0] else vector


def _float32_rows(vectors: np.ndarray, n: int) -> tuple[int, np.ndarray]:
    """The dim, and `vectors` as little-endian float32 rows, one per owner; each must be
    finite and of unit length (a cosine is a dot product of two of them)."""
    if vectors.ndim != 2 or vectors.shape[0] != n:
        raise ValueError("one vector per owner is required")
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    bad = np.flatnonzero(off_unit_rows(rows))
    if len(bad):
        norm = float(np.linalg.norm(rows[bad[0]].astype(np.float64)))
        raise DatabaseError(
            f"vector #{int(bad[0]) + 1} of {n} to store is not finite and of unit length "
            f"(norm {norm:.4g}); nothing of it was stored"
        )
    return int(rows.shape[1]), rows


class VectorStore(StoreFile):
    """The vector tables of a `Store`, with caches of the item matrix that last until any
    vector changes."""

    def __init__(self, path: Path | str, *, create: bool = True, readonly: bool = False) -> None:
        self._matrix_cache: dict[tuple[str, str | None], tuple[int, ItemMatrix]] = {}
        self._count_cache: dict[str | None, tuple[int, int]] = {}
        super().__init__(path, create=create, readonly=readonly)

    # -- item vectors ----------------------------------------------------------------------

    def _bump_vectors(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE state SET value = value + 1 WHERE key = 'vectors'")

    def vectors_generation(self) -> int:
        row = self._conn.execute("SELECT value FROM state WHERE key = 'vectors'").fetchone()
        return int(row[0])

    def vector_hashes(self, model: str, kind: VectorKind = "item") -> dict[str, str]:
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
        kind: VectorKind = "item",
    ) -> None:
        """Store vectors inside the caller's write transaction."""
        dim, data = _float32_rows(vectors, len(owners))
        conn.executemany(
            "INSERT INTO vectors (kind, owner, model, dim, content_hash, vector, checksum) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(kind, owner, model) DO UPDATE SET "
            "dim = excluded.dim, content_hash = excluded.content_hash, "
            "vector = excluded.vector, checksum = excluded.checksum",
            [
                (kind, owner, model, dim, h, blob, zlib.crc32(blob))
                for owner, h, blob in zip(owners, hashes, _row_bytes(data), strict=True)
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
            found = self._read_rows(conn, model, domain) if packed is None else packed
        result = _without_damage(_select_domain(found, domain))
        if dim is not None and result.matrix.shape[1] != dim:
            raise DatabaseError(
                f"{self.path}: vectors of model {model!r} have {result.matrix.shape[1]} "
                f"dimensions but the model has {dim}; re-encode with "
                f"`localrec encode --model {model} --force`"
            )
        self._matrix_cache[key] = (generation, result)
        return result

    def _read_rows(self, conn: sqlite3.Connection, model: str, domain: str | None) -> _Found:
        # Items drive the join (CROSS JOIN keeps that order), so rowid order needs no sort.
        # Joined the other way, SQLite sorted every BLOB in a temp B-tree, which spills to a
        # temp file past cache_size: half of a cold load at 100k vectors.
        sql = (
            "SELECT i.id, i.domain, v.dim, v.vector, v.checksum FROM items i CROSS JOIN vectors v "
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
        ids, domains, dims, blobs, checksums = zip(*rows, strict=True)
        stored_dim = int(dims[0])
        if any(d != stored_dim for d in dims):
            raise DatabaseError(f"{self.path}: vectors of model {model!r} have mixed dimensions")
        raw = b"".join(blobs)
        if len(raw) != 4 * stored_dim * len(ids):
            raise DatabaseError(f"{self.path}: a stored vector of {model!r} has the wrong length")
        matrix = np.frombuffer(raw, dtype="<f4").reshape(len(ids), stored_dim)
        # A NULL checksum (none is written so) counts as the checksum of what is there.
        sums = [zlib.crc32(b) if c is None else c for b, c in zip(blobs, checksums, strict=True)]
        return _Found(model, tuple(ids), tuple(domains), matrix, np.asarray(sums, dtype="<u4"))

    def _read_packed(self, conn: sqlite3.Connection, model: str, generation: int) -> _Found | None:
        row = conn.execute(
            "SELECT rowid, generation, dim, ids, domains, checksums FROM matrices WHERE model = ?",
            (model,),
        ).fetchone()
        if row is None or row[1] != generation:
            return None
        rowid, _, dim, ids_text, domains_text, checksums = row
        ids = tuple(ids_text.split(_SEP))
        domains = tuple(domains_text.split(_SEP))
        with conn.blobopen("matrices", "data", rowid, readonly=True) as blob:
            size = len(blob)
            if (
                size != 4 * dim * len(ids)
                or len(domains) != len(ids)
                or checksums is None
                or len(checksums) != 4 * len(ids)
            ):
                # Only a cache of the rows: they are read instead, each checked on its own.
                return None
            out = read_blob(blob)
        matrix = out.view("<f4").reshape(len(ids), dim)
        matrix.flags.writeable = False
        return _Found(model, ids, domains, matrix, np.frombuffer(checksums, dtype="<u4"))

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
            # The rows' stored checksums, not new ones: a row damaged in the file stays
            # found out in the packed copy.
            conn.execute(
                "INSERT INTO matrices (model, generation, dim, ids, domains, data, checksums) "
                "VALUES (?, ?, ?, ?, ?, zeroblob(?), ?) ON CONFLICT(model) DO UPDATE SET "
                "generation = excluded.generation, dim = excluded.dim, ids = excluded.ids, "
                "domains = excluded.domains, data = excluded.data, "
                "checksums = excluded.checksums",
                (
                    model,
                    generation,
                    full.matrix.shape[1],
                    _SEP.join(full.ids),
                    _SEP.join(full.domains),
                    len(data),
                    full.checksums.astype("<u4").tobytes(),
                ),
            )
            rowid = conn.execute("SELECT rowid FROM matrices WHERE model = ?", (model,)).fetchone()
            with conn.blobopen("matrices", "data", rowid[0]) as blob:
                for offset in range(0, len(data), _PACK_CHUNK):
                    blob.write(data[offset : offset + _PACK_CHUNK].tobytes())
        return True

    def item_vectors(self, model: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of a few items, by id (no full-matrix read)."""
        return self._vectors_by_key(
            "SELECT owner, dim, vector, checksum FROM vectors WHERE kind = 'item' "
            "AND model = ? AND owner IN ({marks})",
            model,
            ids,
        )

    def _vectors_by_key(
        self, select: str, model: str, keys: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """The (key, dim, vector, checksum) rows that `select` finds for `model` and `keys`
        (its `{marks}` stand for the `IN` list), by key. A damaged vector is left out, as
        if it were not stored: the caller embeds the text again."""
        out: dict[str, np.ndarray] = {}
        for part, marks in in_chunks(list(dict.fromkeys(keys))):
            rows = self._conn.execute(select.format(marks=marks), [model, *part])
            for key, dim, blob, checksum in rows:
                vector = _intact_vector(blob, int(dim), checksum)
                if vector is not None:
                    out[key] = vector
        return out

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
        return cached[1] - len(matrix.ids) - len(matrix.damaged)  # damaged: named apart

    # -- stored users' vectors ------------------------------------------------------------

    def user_vector(self, user_id: str, model: str, digest: str) -> np.ndarray | None:
        """A cached history-text vector of a stored user, if its text has not changed."""
        row = self._conn.execute(
            "SELECT dim, vector, checksum FROM vectors WHERE kind = 'user' AND owner = ? "
            "AND model = ? AND content_hash = ?",
            (user_id, model, digest),
        ).fetchone()
        return _intact_vector(row[1], int(row[0]), row[2]) if row else None

    def put_user_vector(self, user_id: str, model: str, digest: str, vector: np.ndarray) -> None:
        with self.write(checked=False) as conn:  # a cache: no quick_check first
            self.put_vectors(conn, model, [user_id], [digest], vector.reshape(1, -1), kind="user")

    # -- eval's history-text cache ---------------------------------------------------------

    def history_vectors(self, model: str, digests: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached query vectors of history texts, by the text's content hash (the
        `content_hash` of model, query prefix and text). Missing ones are left out."""
        return self._vectors_by_key(
            "SELECT content_hash, dim, vector, checksum FROM history_vectors WHERE model = ? "
            "AND content_hash IN ({marks})",
            model,
            digests,
        )

    def put_history_vectors(self, model: str, digests: Sequence[str], vectors: np.ndarray) -> None:
        """Cache the query vectors of history texts, one per content hash."""
        dim, data = _float32_rows(vectors, len(digests))
        with self.write(checked=False) as conn:  # a cache: no quick_check first
            conn.executemany(
                "INSERT INTO history_vectors (model, content_hash, dim, vector, checksum) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(model, content_hash) DO UPDATE SET "
                "dim = excluded.dim, vector = excluded.vector, checksum = excluded.checksum",
                [
                    (model, d, dim, blob, zlib.crc32(blob))
                    for d, blob in zip(digests, _row_bytes(data), strict=True)
                ],
            )

    # -- adapters --------------------------------------------------------------------------

    def has_adapter(self, model: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM adapters WHERE model = ? LIMIT 1", (model,))
        return row.fetchone() is not None

    def put_adapter(self, model: str, name: str, meta: dict[str, Any], payload: bytes) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO adapters (model, name, created_at, meta, payload) "
                "VALUES (?, ?, datetime('now'), ?, ?) ON CONFLICT(model, name) DO UPDATE SET "
                "created_at = excluded.created_at, meta = excluded.meta, "
                "payload = excluded.payload",
                (model, name, json.dumps(meta), payload),
            )

    def adapter_models(self) -> dict[str, str]:
        """The models with a stored adapter, with when it was trained (UTC)."""
        rows = self._conn.execute(
            "SELECT model, max(created_at) FROM adapters GROUP BY model ORDER BY model"
        )
        return {str(model): str(created) for model, created in rows}

    def get_adapter(self, model: str, name: str) -> tuple[dict[str, Any], bytes] | None:
        row = self._conn.execute(
            "SELECT meta, payload FROM adapters WHERE model = ? AND name = ?", (model, name)
        ).fetchone()
        return (json.loads(row[0]), bytes(row[1])) if row else None


@dataclass(frozen=True)
class _Found:
    """Item vectors as read, before the damaged ones are left out, with their stored
    checksums."""

    model: str
    ids: tuple[str, ...]
    domains: tuple[str, ...]
    matrix: np.ndarray
    checksums: np.ndarray


def _row_bytes(rows: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in rows]


def _select_domain(found: _Found, domain: str | None) -> tuple[_Found, str | None]:
    if domain is None:
        return found, None
    mask = np.asarray(found.domains) == domain
    if not mask.any():
        raise NotEncoded(
            f"no vectors for model {found.model!r} in domain {domain!r}; "
            f"run `localrec encode --model {found.model}`"
        )
    if mask.all():
        return found, domain
    rows = np.flatnonzero(mask)
    ids = tuple(found.ids[r] for r in rows)
    picked = _Found(
        found.model, ids, (domain,) * len(ids), found.matrix[rows], found.checksums[rows]
    )
    return picked, domain


def _without_damage(selected: tuple[_Found, str | None]) -> ItemMatrix:
    """The matrix without rows whose bytes no longer match their checksum or that are not
    finite and of unit length: every vector is checked when stored, so such a row was
    damaged in the file, and it is never scored (its item is named in `damaged`)."""
    found, domain = selected
    bad = damaged_rows(found.matrix, found.checksums) | off_unit_rows(found.matrix)
    if not bad.any():
        matrix = found.matrix
        if matrix.flags.writeable:
            matrix = matrix.view()
            matrix.flags.writeable = False
        return ItemMatrix(found.model, domain, found.ids, found.domains, matrix)
    keep = np.flatnonzero(~bad)
    matrix = found.matrix[keep]
    matrix.flags.writeable = False
    return ItemMatrix(
        found.model,
        domain,
        tuple(found.ids[r] for r in keep),
        tuple(found.domains[r] for r in keep),
        matrix,
        damaged=tuple(found.ids[r] for r in np.flatnonzero(bad)),
    )
