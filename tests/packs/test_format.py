"""The pack file: what it holds comes back as written, a damaged, foreign or newer file is
refused with a PackError naming it, and reading never writes."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from localrec.errors import LocalrecError, PackError
from localrec.packs.format import PACK_FORMAT, PackContent, item_rows, read_pack
from tests.packs.files import (
    BAD_KINDS,
    BAD_PACKS,
    DIM,
    ROWS,
    bad_pack,
    content,
    edited,
    middle,
    write,
)


def _rows(parts: dict[str, object]) -> list[tuple[object, ...]]:
    """The items as written: (id, domain, title, fields, attributes), in row order."""
    items = parts["items"]
    assert isinstance(items, list)
    return [astuple(item) for item in items]


def _read_back(got: PackContent) -> list[tuple[object, ...]]:
    """Every item of a pack read back through its open connection, in row order."""
    rows = {row[0]: row for row in item_rows(got.connection, got.ids)}
    return [rows[i] for i in got.ids]


@pytest.mark.parametrize("dtype", ["int8", "float16", "float32"])
def test_a_round_trip_keeps_everything(tmp_path: Path, dtype: str) -> None:
    parts = content()
    path = write(tmp_path / "round.lrpack", dtype)
    got = read_pack(path)
    assert _read_back(got) == _rows(parts)
    assert list(got.ids) == [f"item-{r}" for r in range(ROWS)]
    assert _read_back(got)[7][2] == "Title 7 — ünïcode ☕"
    assert got.meta["format_version"] == PACK_FORMAT and got.meta["vector_dtype"] == dtype
    assert got.meta["dim"] == DIM and got.meta["min_users"] == 2
    assert got.adapter == parts["adapter"]
    np.testing.assert_array_equal(got.popularity, parts["popularity"])
    assert set(got.parts) == {"cooccurrence"} and got.sizes["part:cooccurrence"] > 0
    written = parts["parts"]
    assert isinstance(written, dict)
    exact = 0.0 if dtype == "float32" else 1e-6  # weights as float32 but for full precision
    np.testing.assert_allclose(
        got.parts["cooccurrence"].toarray(), written["cooccurrence"].toarray(), rtol=exact
    )
    original = parts["vectors"]
    assert isinstance(original, np.ndarray)
    assert got.vectors.shape == (ROWS, DIM) and got.vectors.dtype == np.float32
    cosine = (got.vectors * original).sum(axis=1) / np.linalg.norm(got.vectors, axis=1)
    sim = parts["similarity"]
    assert isinstance(sim, sp.csr_matrix)
    if dtype == "float32":
        np.testing.assert_array_equal(got.vectors, original)
        np.testing.assert_array_equal(got.similarity.toarray(), sim.toarray())
    elif dtype == "float16":
        np.testing.assert_allclose(got.vectors, original, atol=1e-3)
        np.testing.assert_allclose(got.similarity.toarray(), sim.toarray(), rtol=1e-6)
    else:
        assert np.abs(got.vectors - original).max() <= 1e-2
        assert cosine.min() >= 0.999
        # float32 weights outside full precision
        np.testing.assert_allclose(got.similarity.toarray(), sim.toarray(), rtol=1e-6)
    assert got.sizes["vectors"] == ROWS * DIM * {"int8": 1, "float16": 2, "float32": 4}[dtype]


def test_an_unknown_vector_type_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="int4"):
        write(out / "x.lrpack", "int4")
    assert list(out.iterdir()) == []  # no half-written file left behind


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_a_bad_pack_is_refused_with_its_name(tmp_path: Path, kind: str) -> None:
    from localrec.packs.pack import open_pack

    bad = bad_pack(tmp_path, kind)
    for read in (read_pack, open_pack):
        with pytest.raises(PackError) as caught:
            read(bad)
        message = str(caught.value)
        assert bad.name in message and BAD_PACKS[kind][1] in message, message
        assert "\n" not in message and isinstance(caught.value, LocalrecError)
    if kind == "newer":
        assert "checksum" not in message and f"up to {PACK_FORMAT}" in message


def test_the_flipped_byte_is_in_the_vectors(tmp_path: Path) -> None:
    """The vectors are most of a pack: the middle of the file is inside them."""
    good = write(tmp_path / "good.lrpack")
    at = middle(good)
    conn = sqlite3.connect(good)
    (vectors,) = conn.execute("SELECT data FROM blobs WHERE name = 'vectors'").fetchone()
    conn.close()
    assert good.read_bytes()[at - 4 : at + 28] in vectors


def test_a_pack_edited_after_it_was_built_fails_its_checksum(tmp_path: Path) -> None:
    bad = write(tmp_path / "edited.lrpack")
    edited(bad, "UPDATE items SET title = 'another title' WHERE row = 3")
    with pytest.raises(PackError, match="checksum does not match"):
        read_pack(bad)
    assert _read_back(read_pack(bad, verify=False))[3][2] == "another title"


def test_opening_a_pack_never_writes(tmp_path: Path) -> None:
    """Opened immutable: no -wal, -shm or -journal beside it, same bytes, same mtime."""
    from localrec.packs.pack import open_pack

    path = write(tmp_path / "packs" / "still.lrpack")
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    listing = sorted(p.name for p in path.parent.iterdir())
    pack = open_pack(path)
    assert pack.ids[:2] == ("item-0", "item-1") and pack.index["item-299"] == 299
    assert pack.info()["format_version"] == PACK_FORMAT
    read_pack(path, verify=False)
    assert sorted(p.name for p in path.parent.iterdir()) == listing == ["still.lrpack"]
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


def test_writing_replaces_a_pack_whole(tmp_path: Path) -> None:
    path = write(tmp_path / "packs" / "twice.lrpack", seed=0)
    write(path, seed=1)
    got = read_pack(path)
    assert _read_back(got) == _rows(content(1))
    assert sorted(p.name for p in path.parent.iterdir()) == ["twice.lrpack"]
