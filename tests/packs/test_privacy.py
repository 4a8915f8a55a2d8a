"""What a pack built from a real database holds about people: nothing but the catalogue and
aggregates over at least K distinct users. The database's user ids, reviews and event times
are made easy to find (tests/packs/corpus.py), and the pack's bytes are searched for them."""

from __future__ import annotations

import io
import shutil
import sqlite3
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from localrec.models.cache import resolve_model
from localrec.packs.build import PackBuild, build_pack
from localrec.packs.pack import Pack, open_pack
from localrec.scoring.hybrid import used_parts
from localrec.store.db import Store
from localrec.tuning.storage import load_adapter, store_adapter
from tests.packs.corpus import (
    DUO_PAIR,
    REVIEW_MARK,
    SOLO_PAIR,
    USER_MARK,
    event_times,
    tuned_corpus,
)


@pytest.fixture
def corpus(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, pulled_home: Path, model_home: Path
) -> Path:
    """A copy of the tuned database, this test's own, with the model it was encoded with in
    this test's LOCALREC_HOME (a pack records its GGUF's sha256)."""
    db = tmp_path / "vendor.db"
    shutil.copy(tuned_corpus(tmp_path_factory, pulled_home), db)
    return db


def build(db: Path, out: Path, min_users: int) -> tuple[PackBuild, Pack]:
    with Store(db) as store:
        built = build_pack(out, store=store, min_users=min_users)
    return built, open_pack(out)


def findable(path: Path) -> tuple[bytes, int]:
    """The file's bytes and the members of every .npz blob in it (numpy writes them
    uncompressed today; a compressed one must not hide anything from the search), and how
    many .npz blobs there were."""
    parts = [path.read_bytes()]
    conn = sqlite3.connect(path)
    try:
        blobs = [r[0] for r in conn.execute("SELECT data FROM blobs")]
    finally:
        conn.close()
    archives = [b for b in blobs if b.startswith(b"PK\x03\x04")]
    for blob in archives:
        with zipfile.ZipFile(io.BytesIO(blob)) as npz:
            parts.extend(npz.read(name) for name in npz.namelist())
    return b"\x00".join(parts), len(archives)


def traces(db: Path) -> dict[str, list[bytes]]:
    """What would give the database's people away, as bytes: user ids, review text, and each
    event time as text (repr, 6 decimals, whole seconds) and as float64 either way round."""
    with Store(db) as store:
        users = list(store.user_sequences())
    times = event_times(db)
    assert len(users) == 803 and all(u.startswith(USER_MARK) for u in users)
    return {
        "user ids": [USER_MARK.encode(), *(u.encode() for u in users)],
        "reviews": [REVIEW_MARK.encode(), b"secret review"],
        "time texts": [s.encode() for t in times for s in (repr(t), f"{t:.6f}", str(int(t)))],
        "float64 times": [struct.pack(order, t) for t in times for order in ("<d", ">d")],
    }


def test_a_pack_holds_no_user_id_review_or_event_time(corpus: Path, tmp_path: Path) -> None:
    built, pack = build(corpus, tmp_path / "shop.lrpack", 2)
    assert built.users == 803 and built.items == 120 and built.adapter_items > 0
    assert pack.adapter is not None
    database = corpus.read_bytes()
    searched, archives = findable(tmp_path / "shop.lrpack")
    assert archives >= 2  # the adapter and the neighbours
    for what, needles in traces(corpus).items():
        # The search can find them: the database itself holds them (SQLite keeps a REAL as
        # big-endian float64, not as text).
        if what != "time texts":
            assert any(n in database for n in needles), what
        found = [n for n in needles if n in searched]
        assert found == [], f"the pack holds {what}: {found[:3]}"


def test_a_pack_is_three_tables_of_known_content(corpus: Path, tmp_path: Path) -> None:
    build(corpus, tmp_path / "shop.lrpack", 2)
    conn = sqlite3.connect(tmp_path / "shop.lrpack")
    try:
        objects = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
        blobs = {r[0] for r in conn.execute("SELECT name FROM blobs")}
        meta = {r[0] for r in conn.execute("SELECT key FROM pack_meta")}
        columns = [r[1] for r in conn.execute("PRAGMA table_info(items)")]
    finally:
        conn.close()
    assert sorted(name for kind, name in objects if kind == "table") == [
        "blobs",
        "items",
        "pack_meta",
    ]
    assert {kind for kind, _ in objects} <= {"table", "index"}  # indexes: of the keys only
    assert all(name.startswith("sqlite_autoindex_") for kind, name in objects if kind == "index")
    parts = {b for b in blobs if b.startswith("part:")}
    assert blobs - parts == {"adapter", "neighbours", "popularity", "vector_scales", "vectors"}
    with Store(corpus) as store:
        adapter = load_adapter(store, resolve_model(None)[0].name)
    assert adapter is not None
    assert parts == {f"part:{name}" for name in used_parts(adapter)}
    assert columns == ["row", "id", "domain", "title", "fields", "attributes"]
    assert meta == {
        *("adapter", "built_at", "checksum", "dim", "format_version", "knn"),
        *("localrec_version", "min_users", "model", "model_sha256", "neighbours"),
        *("source", "templates", "vector_dtype"),
    }


def test_a_pair_needs_k_users_in_a_built_pack(corpus: Path, tmp_path: Path) -> None:
    """SOLO_PAIR was made by one user, DUO_PAIR by two, on items no one else had. With K = 2
    only DUO_PAIR has a weight and its items a popularity; with K = 1 both do, so what K = 2
    leaves out is left out for K's sake."""
    _, private = build(corpus, tmp_path / "k2.lrpack", 2)
    _, everyone = build(corpus, tmp_path / "k1.lrpack", 1)

    def weight(pack: Pack, pair: tuple[str, str]) -> float:
        return float(pack.similarity[pack.index[pair[0]], pack.index[pair[1]]])

    def popularity(pack: Pack, pair: tuple[str, str]) -> list[int]:
        return [int(pack.popularity[pack.index[i]]) for i in pair]

    assert weight(private, SOLO_PAIR) == 0 and popularity(private, SOLO_PAIR) == [0, 0]
    assert weight(private, DUO_PAIR) > 0 and popularity(private, DUO_PAIR) == [2, 2]
    assert weight(everyone, SOLO_PAIR) > 0 and popularity(everyone, SOLO_PAIR) == [1, 1]
    assert weight(everyone, DUO_PAIR) == pytest.approx(weight(private, DUO_PAIR), rel=1e-6)
    # No weight of the K = 2 pack touches the items of SOLO_PAIR at all.
    solo = [private.index[i] for i in SOLO_PAIR]
    assert private.similarity[solo].nnz == 0 and private.similarity[:, solo].nnz == 0
    # The adapter counts the solo user's trained item as never seen; K = 1 keeps it.
    first = private.index[SOLO_PAIR[0]]
    assert private.adapter is not None and everyone.adapter is not None
    assert everyone.adapter.seen[first] and not private.adapter.seen[first]
    assert private.adapter.counts is not None and private.adapter.counts[first] == 0
    assert private.info()["reveals"].count("K = 2") == 1


def test_an_order_blind_part_needs_k_users_who_had_both_items(corpus: Path, tmp_path: Path) -> None:
    """With the hybrid using co-occurrence and RP3beta, the pack carries their weights only
    for pairs that K users both had: SOLO_PAIR's items have none at K = 2, DUO_PAIR has."""
    with Store(corpus) as store:
        adapter = load_adapter(store, resolve_model(None)[0].name)
        assert adapter is not None
        for domain in adapter.domains.values():
            for setting in ("mixed", "cross"):
                domain.cf_weights[setting] = {"itemknn": 1.0, "cooccurrence": 0.5, "rp3beta": 0.5}
        store_adapter(store, adapter)
    _, private = build(corpus, tmp_path / "k2.lrpack", 2)
    _, everyone = build(corpus, tmp_path / "k1.lrpack", 1)
    assert set(private.parts) == set(everyone.parts) == {"cooccurrence", "rp3beta"}
    solo = [private.index[i] for i in SOLO_PAIR]
    duo = [private.index[i] for i in DUO_PAIR]
    for name, weights in private.parts.items():
        assert weights[solo].nnz == 0 and weights[:, solo].nnz == 0, name
        assert weights[duo[0], duo[1]] > 0 and weights[duo[1], duo[0]] > 0, name
        assert everyone.parts[name][solo[0], solo[1]] > 0, name


def test_no_adapter_row_of_a_pack_gives_away_the_count_of_an_item_under_k(
    corpus: Path, tmp_path: Path
) -> None:
    """The solo user's first item (kitchen) was trained on once. The pack must not say so:
    its popularity is 0 and it counts as unseen, and no adapter's bias is log1p(1)."""
    _, pack = build(corpus, tmp_path / "k2.lrpack", 2)
    assert pack.adapter is not None and len(pack.adapter.domains) == 2
    r = pack.index[SOLO_PAIR[0]]
    assert pack.domains[r] == "kitchen" and pack.popularity[r] == 0
    names = pack.adapter.domain_names
    biases = {names[d]: float(a.bias[r]) for d, a in pack.adapter.domains.items()}
    assert not any(np.isclose(b, np.log1p(1.0), atol=1e-6) for b in biases.values()), biases
