"""Pack files for the tests: a small one written by `write_pack`, and bad ones, each bad in
one way, with what the PackError refusing it must say."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from localrec.packs.format import PACK_FORMAT, PackItem, write_pack

ROWS, DIM = 300, 384


def content(seed: int = 0) -> dict[str, object]:
    """What one pack holds: 300 items of two domains, unit vectors, popularity, weights."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = [
        PackItem(
            f"item-{r}",
            ("kitchen", "books")[r % 2],
            f"Title {r} — ünïcode ☕",
            json.dumps({"brand": f"b{r % 7}"}),
            json.dumps({"price": r / 10}),
        )
        for r in range(ROWS)
    ]
    similarity = sp.random(ROWS, ROWS, density=0.02, random_state=seed, format="csr")
    return dict(
        meta={"dim": DIM, "model": "all-minilm-l6-v2", "min_users": 2, "neighbours": 100},
        items=items,
        vectors=vectors,
        popularity=rng.integers(0, 50, ROWS),
        similarity=similarity,
        adapter=b"not really an adapter, but bytes all the same",
        parts={"cooccurrence": sp.random(ROWS, ROWS, density=0.01, random_state=seed + 1)},
    )


def write(path: Path, vector_dtype: str = "int8", seed: int = 0) -> Path:
    parts = content(seed)
    write_pack(path, **parts, vector_dtype=vector_dtype)  # type: ignore[arg-type]
    return path


# -- bad packs ----------------------------------------------------------------------------


def truncated(good: Path, bad: Path) -> None:
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 2])


def flipped(good: Path, bad: Path) -> None:
    """One byte flipped in the middle of the file (8 bytes on, past the next-page pointer
    that starts an overflow page: content, which only the checksum can tell is wrong)."""
    data = bytearray(good.read_bytes())
    data[middle(good)] ^= 0xFF
    bad.write_bytes(bytes(data))


def middle(path: Path) -> int:
    return path.stat().st_size // 2 + 8


def a_database(good: Path, bad: Path) -> None:
    from localrec.store.db import Store
    from localrec.store.ingest import add_items

    with Store(bad) as store:
        add_items(store, [{"id": "a", "domain": "kitchen", "title": "a pan"}])


def text(good: Path, bad: Path) -> None:
    bad.write_text("id,title\na,a pan\n" * 200, encoding="utf-8")


def edited(path: Path, sql: str) -> None:
    """`sql` run on the pack file as on any SQLite database (its checksum left as it was)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


def newer(good: Path, bad: Path) -> None:
    """The format version set one past this localrec's and nothing else changed: the
    checksum no longer matches either, but the version must be what is said."""
    bad.write_bytes(good.read_bytes())
    edited(bad, f"UPDATE pack_meta SET value = '{PACK_FORMAT + 1}' WHERE key = 'format_version'")


def missing(good: Path, bad: Path) -> None:
    pass


def unparsable_meta(good: Path, bad: Path) -> None:
    """A pack_meta value that is not JSON (as a flipped byte in pack_meta can make it)."""
    bad.write_bytes(good.read_bytes())
    edited(bad, """UPDATE pack_meta SET value = '{"broken' WHERE key = 'model'""")


# Each way a file may be bad, and what the message must say beside the file's name.
BAD_PACKS: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "missing": (missing, "no such pack file"),
    "truncated": (truncated, "not a readable localrec pack"),
    "flipped": (flipped, "checksum does not match"),
    "database": (a_database, "not a localrec pack"),
    "text": (text, "not a readable localrec pack"),
    "newer": (newer, "newer"),
    "unparsable-meta": (unparsable_meta, "build or copy it again"),
}
# The kinds, as parameters.
BAD_KINDS = list(BAD_PACKS)


def bad_pack(tmp_path: Path, kind: str) -> Path:
    """A pack made bad in the way `kind` names, beside a good one."""
    good = write(tmp_path / "good.lrpack")
    bad = tmp_path / f"bad-{kind}.lrpack"
    BAD_PACKS[kind][0](good, bad)
    return bad
