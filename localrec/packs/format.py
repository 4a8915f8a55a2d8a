"""The pack file: one SQLite file, written once by `pack build`, opened read-only (immutable).

Tables:
- `pack_meta(key, value)`: JSON values: the format version, the localrec version, the
  model's name, dim and GGUF sha256, the build time, K and N, the templates, the
  adapter's settings, counts, and `checksum`, the sha256 of everything else;
- `items(row, id, domain, title, fields, attributes)`: the catalogue, in matrix order;
- `blobs(name, data)`: `vectors` (rows x dim: int8 with one float32 scale per row in
  `vector_scales`, or float16, or float32; little-endian),
  `popularity` and `neighbours` (.npy / .npz bytes), `part:NAME` for each order-blind
  collaborative part the hybrid uses (.npz, like `neighbours`), and `adapter` (its .npz
  payload).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from localrec.errors import PackError
from localrec.store.vectors import in_chunks, read_blob

__all__ = [
    "PACK_FORMAT",
    "PACK_REVEALS",
    "VECTOR_DTYPES",
    "PackContent",
    "PackItem",
    "item_rows",
    "pack_errors",
    "read_pack",
    "write_pack",
]

# Blob name prefix of a collaborative part's weights ("part:cooccurrence").
PART_PREFIX = "part:"
# Items per piece of the checksum's JSON.
_ITEM_BATCH = 4096
# The pack format this localrec writes and the newest it reads. Format 2: the adapter's
# hybrid may blend order-blind collaborative parts (`part:NAME` blobs), popularity and a
# share of its item bias; a localrec that reads only format 1 would serve such an
# adapter as item-kNN alone, so it refuses the pack instead.
PACK_FORMAT = 2
# What a pack says about people, in one sentence (`pack info` and the README).
PACK_REVEALS = (
    "A pack reveals the catalogue, its item vectors, the adapter's weights, and counts and "
    "co-occurrence weights only for items and item pairs that at least K distinct users had; "
    "it holds no user ids, sequences, timestamps, reviews or per-user vectors."
)
_SCHEMA = (
    "CREATE TABLE pack_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE items (row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
    "domain TEXT NOT NULL, title TEXT NOT NULL, fields TEXT NOT NULL, attributes TEXT NOT NULL)",
    "CREATE TABLE blobs (name TEXT PRIMARY KEY, data BLOB NOT NULL)",
)


@dataclass(frozen=True)
class PackItem:
    """One catalogue item of a pack, as stored (fields and attributes as JSON text)."""

    id: str
    domain: str
    title: str
    fields: str
    attributes: str


@dataclass(frozen=True)
class PackContent:
    """Everything in a pack file, as arrays."""

    meta: dict[str, Any]
    ids: tuple[str, ...]  # the items' ids and domains, in row order
    domains: tuple[str, ...]
    connection: sqlite3.Connection  # open, immutable: titles and fields are read on demand
    vectors: np.ndarray  # (rows, dim) float32
    popularity: np.ndarray  # (rows,) int64
    similarity: sp.csr_matrix  # (rows, rows) forward weights sim(a, b)
    adapter: bytes | None  # the adapter's .npz payload; its settings are meta["adapter"]
    sizes: dict[str, int]  # bytes per part
    # The hybrid's order-blind collaborative parts' weights (rows, rows), by name.
    parts: dict[str, sp.csr_matrix] = field(default_factory=dict)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _hash_items(digest: Any, rows: Iterable[Sequence[Any]]) -> tuple[list[str], list[str]]:
    """Feed the items to `digest`, _ITEM_BATCH rows of JSON at a time, in row order; their
    ids and domains (one string object per domain)."""
    ids: list[str] = []
    domains: list[str] = []
    shared: dict[str, str] = {}
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append(row)
        ids.append(row[1])
        domains.append(shared.setdefault(row[2], row[2]))
        if len(batch) == _ITEM_BATCH:
            digest.update(json.dumps(batch, ensure_ascii=False).encode())
            batch = []
    if batch:
        digest.update(json.dumps(batch, ensure_ascii=False).encode())
    return ids, domains


def _checksum(meta: Mapping[str, str], items: Any, blobs: Iterable[tuple[str, Any]]) -> str:
    """sha256 over the meta rows (but the checksum), the items (a digest `_hash_items` has
    fed) and the blobs, in order."""
    digest = hashlib.sha256()
    for key in sorted(meta):
        if key != "checksum":
            digest.update(f"{key}\x1f{meta[key]}\x1e".encode())
    digest.update(items.digest())
    for name, data in blobs:
        digest.update(f"{name}\x1f{len(data)}\x1f".encode())
        digest.update(data)
    return digest.hexdigest()


VECTOR_DTYPES = ("int8", "float16", "float32")


def _vector_blobs(vectors: np.ndarray, dtype: str) -> dict[str, bytes]:
    """The matrix as stored: int8 rows scaled by their largest |value| / 127, or floats."""
    if dtype == "int8":
        scales = np.abs(vectors).max(axis=1) / 127.0
        safe = np.where(scales > 0, scales, 1.0)
        quantised = np.clip(np.rint(vectors / safe[:, None]), -127, 127).astype(np.int8)
        return {
            "vectors": quantised.tobytes(),
            "vector_scales": scales.astype("<f4").tobytes(),
        }
    if dtype not in VECTOR_DTYPES:
        raise ValueError(f"vector dtype {dtype!r} is not one of {VECTOR_DTYPES}")
    return {"vectors": vectors.astype("<f2" if dtype == "float16" else "<f4").tobytes()}


def _sparse_blob(matrix: sp.spmatrix, dtype: Any) -> bytes:
    sim = sp.csr_matrix(matrix)
    return _npz(
        indptr=sim.indptr.astype("<i8"),
        indices=sim.indices.astype("<i4"),
        data=sim.data.astype(dtype),
        shape=np.asarray(sim.shape, dtype="<i8"),
    )


def _sparse_of(blob: bytes) -> sp.csr_matrix:
    with np.load(io.BytesIO(blob), allow_pickle=False) as parts:
        shape = tuple(int(x) for x in parts["shape"])
        return sp.csr_matrix(
            (parts["data"].astype(np.float64), parts["indices"], parts["indptr"]), shape=shape
        )


def _vectors_of(blobs: dict[str, Any], dtype: str, rows: int, dim: int) -> np.ndarray:
    if dtype == "int8":
        quantised = np.frombuffer(blobs["vectors"], dtype=np.int8).reshape(rows, dim)
        scales = np.frombuffer(blobs["vector_scales"], dtype="<f4")
        out: np.ndarray = quantised.astype(np.float32)
        out *= scales[:, None]
        return out
    stored = np.frombuffer(blobs["vectors"], dtype="<f2" if dtype == "float16" else "<f4")
    return stored.reshape(rows, dim).astype(np.float32)


def write_pack(
    path: Path,
    meta: dict[str, Any],
    items: list[PackItem],
    vectors: np.ndarray,
    popularity: np.ndarray,
    similarity: sp.spmatrix,
    adapter: bytes | None,
    *,
    vector_dtype: str = "int8",
    parts: Mapping[str, sp.spmatrix] | None = None,
) -> None:
    """Write the pack to `path` at once: built beside it, then renamed over it. `parts` are
    the weights of the hybrid's order-blind collaborative parts, by name."""
    weight_dtype = np.float64 if vector_dtype == "float32" else np.float32
    blobs = {
        **_vector_blobs(np.asarray(vectors, dtype=np.float32), vector_dtype),
        "popularity": _npy(np.asarray(popularity, dtype="<i8")),
        "neighbours": _sparse_blob(similarity, weight_dtype),
        **{f"{PART_PREFIX}{n}": _sparse_blob(m, weight_dtype) for n, m in (parts or {}).items()},
    }
    if adapter is not None:
        blobs["adapter"] = adapter
    meta = {**meta, "vector_dtype": vector_dtype, "format_version": PACK_FORMAT}
    encoded = {k: json.dumps(v, ensure_ascii=False, sort_keys=True) for k, v in meta.items()}
    rows = [(i, it.id, it.domain, it.title, it.fields, it.attributes) for i, it in enumerate(items)]
    item_digest = hashlib.sha256()
    _hash_items(item_digest, rows)
    encoded["checksum"] = json.dumps(_checksum(encoded, item_digest, sorted(blobs.items())))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with closing(sqlite3.connect(tmp)) as conn:
            conn.execute("PRAGMA journal_mode = OFF")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.executemany("INSERT INTO pack_meta VALUES (?, ?)", sorted(encoded.items()))
            conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.executemany("INSERT INTO blobs VALUES (?, ?)", sorted(blobs.items()))
            conn.commit()
            conn.execute("VACUUM")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _connect(path: Path) -> sqlite3.Connection:
    """The file opened immutable: never written, never locked, no -wal or -shm beside it.
    One connection may serve several threads (a `Pack` holds a lock around its use)."""
    if not path.is_file():
        raise PackError(f"{path}: no such pack file; build one with `localrec pack build`")
    try:
        return sqlite3.connect(
            f"{path.resolve().as_uri()}?immutable=1", uri=True, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise PackError(f"{path}: cannot be opened as a pack ({exc})") from None


@contextmanager
def pack_errors(path: Path) -> Iterator[None]:
    """SQLite's errors on a pack as one `PackError` naming the file."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise PackError(
            f"{path}: not a readable localrec pack ({exc}); the file is damaged, truncated "
            "or not a pack: build or copy it again"
        ) from None


def _read_blobs(conn: sqlite3.Connection) -> dict[str, Any]:
    """Every blob as bytes; the vectors, the largest, read in pieces straight into a numpy
    buffer (one copy of them in memory, not two)."""
    blobs: dict[str, Any] = dict(
        conn.execute("SELECT name, data FROM blobs WHERE name != 'vectors'").fetchall()
    )
    found = conn.execute("SELECT rowid FROM blobs WHERE name = 'vectors'").fetchone()
    if found is not None:
        with conn.blobopen("blobs", "data", found[0], readonly=True) as blob:
            blobs["vectors"] = read_blob(blob)
    return blobs


def read_pack(path: Path | str, *, verify: bool = True) -> PackContent:
    """The pack at `path`, its checksum verified (unless `verify` is False). Its connection
    stays open (`PackContent.connection`) for item lookups: a pack file replaced meanwhile
    does not mix into what was read."""
    path = Path(path)
    conn = _connect(path)
    try:
        with pack_errors(path):
            return _read(path, conn, verify)
    except BaseException:
        conn.close()
        raise


def _read(path: Path, conn: sqlite3.Connection, verify: bool) -> PackContent:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"pack_meta", "items", "blobs"} <= tables:
        raise PackError(
            f"{path}: a SQLite file, but not a localrec pack (no pack_meta, items and blobs "
            "tables); give a file made by `localrec pack build`"
        )
    encoded = dict(conn.execute("SELECT key, value FROM pack_meta").fetchall())
    try:
        meta = {k: json.loads(v) for k, v in encoded.items()}
    except (TypeError, ValueError):
        raise PackError(
            f"{path}: the pack's metadata is not valid JSON (damaged or edited after it "
            "was built); build or copy it again"
        ) from None
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise PackError(f"{path}: the pack records no format version; build it again")
    if version > PACK_FORMAT:
        raise PackError(
            f"{path}: pack format {version} is newer than this localrec reads (up to "
            f"{PACK_FORMAT}); upgrade localrec to read it"
        )
    item_digest = hashlib.sha256()
    ids, domains = _hash_items(
        item_digest,
        conn.execute("SELECT row, id, domain, title, fields, attributes FROM items ORDER BY row"),
    )
    blobs = _read_blobs(conn)
    item_bytes = conn.execute(
        "SELECT sum(length(CAST(id || domain || title || fields || attributes AS BLOB))) FROM items"
    ).fetchone()[0]
    if verify and _checksum(encoded, item_digest, sorted(blobs.items())) != meta.get("checksum"):
        raise PackError(
            f"{path}: the pack's checksum does not match its content (damaged or changed "
            "after it was built); build or copy it again"
        )
    content = _content(path, meta, tuple(ids), tuple(domains), blobs, conn)
    content.sizes["items"] = int(item_bytes or 0)
    return content


def item_rows(conn: sqlite3.Connection, ids: Sequence[str]) -> list[tuple[str, str, str, str, str]]:
    """(id, domain, title, fields, attributes) of those of `ids` that the pack holds."""
    out: list[tuple[str, str, str, str, str]] = []
    for part, marks in in_chunks(ids):
        out.extend(
            conn.execute(
                f"SELECT id, domain, title, fields, attributes FROM items WHERE id IN ({marks})",
                part,
            )
        )
    return out


def _content(
    path: Path,
    meta: dict[str, Any],
    ids: tuple[str, ...],
    domains: tuple[str, ...],
    blobs: dict[str, Any],
    conn: sqlite3.Connection,
) -> PackContent:
    try:
        dim = int(meta["dim"])
        vectors = _vectors_of(blobs, meta["vector_dtype"], len(ids), dim)
        popularity = np.load(io.BytesIO(blobs["popularity"]), allow_pickle=False)
        similarity = _sparse_of(blobs["neighbours"])
        parts = {
            name[len(PART_PREFIX) :]: _sparse_of(data)
            for name, data in blobs.items()
            if name.startswith(PART_PREFIX)
        }
    except (KeyError, ValueError, OSError) as exc:
        raise PackError(
            f"{path}: the pack's content is malformed ({exc}); build it again"
        ) from None
    return PackContent(
        meta=meta,
        ids=ids,
        domains=domains,
        connection=conn,
        vectors=vectors,
        popularity=popularity.astype(np.int64),
        similarity=similarity,
        adapter=blobs.get("adapter"),
        parts=parts,
        sizes={name: len(data) for name, data in blobs.items()},
    )
