"""A device serving from a pack: `Recommender(private_db, pack=PATH)` ranks the pack's
catalogue (and the device's own items) for the device's users, whose events live only in the
private database. The pack is never written, a newer pack keeps the device's history, and a
pack of another model is said in every list.

The pack is built from the tuned corpus (tests/packs/corpus.py) with the real default model.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from localrec.errors import InputError
from localrec.packs.build import build_pack
from localrec.recommend.recommender import PACK_MODEL_KEY, Recommender
from localrec.store.db import Store
from localrec.store.ingest import add_items
from tests.helpers import TABLES, assert_clean, invoke
from tests.packs.corpus import vendor_and_pack

MODEL = "all-minilm-l6-v2"
OTHER_MODEL = "bge-small-en-v1.5"
T0 = 1_600_000_000.0
KITCHEN = 60  # the corpus's kitchen items (and books)
# Pack items the corpus's users bought: two kitchen tools and a book.
OWNED = ("k000", "b011", "k021")


@pytest.fixture
def shop(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, pulled_home: Path, model_home: Path
) -> tuple[Path, Path]:
    """The vendor's database and the pack built from it (K = 2)."""
    return vendor_and_pack(tmp_path_factory, pulled_home, tmp_path)


@pytest.fixture
def pack(shop: tuple[Path, Path]) -> Path:
    return shop[1]


def record_owned(rec: Recommender, user: str = "me") -> None:
    for j, item in enumerate(OWNED):
        rec.record(user, item, "rate" if j == 2 else "purchase", 5 if j == 2 else None, T0 + j)


def ids(result: object) -> list[str]:
    return [r.item_id for r in result]  # type: ignore[attr-defined]


def row_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


# -- 1. record, then recommend ------------------------------------------------------------


def test_recorded_events_are_the_next_lists_history(pack: Path, tmp_path: Path) -> None:
    """Events recorded on a new private database are the very next list's history, with no
    reload: its size is theirs, the owned items are left out, and each new event changes the
    list. An event recorded without a time is dated now, after an older timed one that is
    recorded later."""
    with Recommender(tmp_path / "me.db", pack=pack) as rec:
        cold = rec.recommend("me", domain="kitchen")
        assert (cold.fallback, cold.history_size) == ("popular", 0)
        record_owned(rec)

        first = rec.recommend("me", domain="kitchen", k=10)
        assert (first.fallback, first.history_size) == (None, 3)
        assert first.user_vector == "tuned-hybrid"
        assert len(first.items) == 10 and not {"k000", "k021"} & set(ids(first))
        whole = rec.recommend("me", domain="kitchen", k=KITCHEN)
        assert len(whole.items) == KITCHEN - 2 and not {"k000", "k021"} & set(ids(whole))
        seen = rec.recommend("me", domain="kitchen", k=KITCHEN, include_seen=True)
        assert len(seen.items) == KITCHEN and {"k000", "k021"} <= set(ids(seen))

        top = first.items[0].item_id
        rec.record("me", top, "purchase")  # no time: now
        second = rec.recommend("me", domain="kitchen", k=10)
        assert second.history_size == 4
        assert top not in ids(second) and ids(second) != ids(first)
        whole = rec.recommend("me", domain="kitchen", k=KITCHEN, include_seen=False)
        assert len(whole.items) == KITCHEN - 3
        assert not {"k000", "k021", top} & set(ids(whole))

        rec.record("me", "b031", "view", time=T0 + 100)  # older than now, recorded later
        order = [e.item_id for e, _ in rec.store.user_events("me")]
        assert order == [*OWNED, "b031", top]
        assert rec.recommend("me", domain="kitchen").history_size == 5


# -- 2. the pack is never written ----------------------------------------------------------


def test_the_pack_is_never_written_and_the_private_db_holds_only_events(
    pack: Path, tmp_path: Path
) -> None:
    before = pack.read_bytes()
    mtime = pack.stat().st_mtime_ns
    private = tmp_path / "me.db"
    with Recommender(private, pack=pack) as rec:
        record_owned(rec)
        rec.recommend("me", domain="kitchen", explain=True)
        rec.recommend("me", domain="books", k=None, threshold=0.2)
        rec.similar("k000")
        rec.score("me", ["k001", "b002"])
        stats = rec.stats()
    assert_clean(invoke("--pack", str(pack), "--db", str(private), "stats", "--json"), 0)
    assert (stats["events"], stats["users"], stats["items_total"]) == (3, 1, 0)
    assert stats["vectors"] == {} and stats["events_skipped"] == 0
    assert stats["pack"]["items"] == {"books": 60, "kitchen": 60}

    assert pack.read_bytes() == before and pack.stat().st_mtime_ns == mtime
    beside = sorted(p.name for p in pack.parent.iterdir() if p.name.startswith(pack.name))
    assert beside == [pack.name]  # no -wal, -shm or -journal
    counts = row_counts(private)
    # The database's own tables (sqlite_sequence: its AUTOINCREMENT ids), none of a pack's.
    assert set(counts) == TABLES | {"matrices", "sqlite_sequence"}
    bookkeeping = {"_sqlite_migrations", "sqlite_sequence", "state"}
    assert {t: n for t, n in counts.items() if n and t not in bookkeeping} == {
        "events": 3,
        "config": 1,
    }
    assert counts["state"] == 1  # the vectors generation, never bumped: nothing was added
    with Store(private) as store:
        assert store.config_items() == {PACK_MODEL_KEY: MODEL}
        assert store.vectors_generation() == 0
        assert [(e.user_id, e.item_id, e.ts) for e, _ in store.user_events("me")] == [
            ("me", item, T0 + j) for j, item in enumerate(OWNED)
        ]


# -- 3. a newer pack keeps the device's history --------------------------------------------


def test_a_newer_pack_keeps_the_history_and_skips_items_that_left(
    shop: tuple[Path, Path], tmp_path: Path
) -> None:
    vendor, pack = shop
    private = tmp_path / "me.db"
    with Recommender(private, pack=pack) as rec:
        record_owned(rec)
        rec.record("me", "k021", "view", time=T0 + 3)  # a second event of k021
        assert rec.recommend("me", domain="kitchen").history_size == 4
        old = rec.stats()
    assert old["events_skipped"] == 0

    # The vendor drops k021 and ships a newer pack in place of the old one.
    with Store(vendor) as store:
        assert store.delete_items(["k021"]).deleted == 1
        build_pack(tmp_path / "newer.lrpack", store=store, min_users=2)
    os.replace(tmp_path / "newer.lrpack", pack)

    with Recommender(private, pack=pack) as rec:
        assert rec.notices == []  # same model
        assert rec.pack is not None
        assert "k021" not in rec.pack.index and len(rec.pack.ids) == 119
        events = [(e.item_id, e.action, e.ts) for e, _ in rec.store.user_events("me")]
        assert events == [
            ("k000", "purchase", T0),
            ("b011", "purchase", T0 + 1),
            ("k021", "rate", T0 + 2),
            ("k021", "view", T0 + 3),
        ]
        result = rec.recommend("me", domain="kitchen", k=KITCHEN)
        assert result.history_size == 2 and result.fallback is None
        assert len(result.items) == KITCHEN - 2  # 59 left, k000 owned
        stats = rec.stats()
    assert (stats["events"], stats["events_skipped"]) == (4, 2)
    assert stats["pack"]["items"] == {"books": 60, "kitchen": 59}
    assert stats["pack"]["checksum"] != old["pack"]["checksum"]

    shown = invoke("--pack", str(pack), "--db", str(private), "stats", "--json")
    assert_clean(shown, 0)
    data = json.loads(shown.stdout)
    assert (data["events"], data["events_skipped"]) == (4, 2)
    text = invoke("--pack", str(pack), "--db", str(private), "stats")
    assert_clean(text, 0)
    assert "of items not in the catalogue (skipped) 2" in text.stdout


# -- 4. a pack of another model ------------------------------------------------------------


def test_a_pack_of_another_model_is_said_once_in_every_list(pack: Path, tmp_path: Path) -> None:
    """The private database last served a pack of OTHER_MODEL: the first Recommender over
    this pack says so in every list, embeds the device's own item again, and writes the
    pack's model down, so the next one says nothing."""
    private = tmp_path / "me.db"
    with Store(private) as store:
        add_items(store, [{"id": "dev-1", "domain": "kitchen", "title": "green tea kettle"}])
        store.config_set(PACK_MODEL_KEY, OTHER_MODEL)
    with Recommender(private, pack=pack) as rec:
        assert len(rec.notices) == 1
        notice = rec.notices[0]
        assert f"uses model {MODEL}, the one before used {OTHER_MODEL}" in notice
        assert "1 item(s) of this device were embedded again" in notice
        assert str(pack) in notice
        record_owned(rec)
        assert notice in rec.recommend("me", domain="kitchen").notes
        assert notice in rec.recommend("nobody", domain="books").notes  # the fallback too
        assert rec.store.config_get(PACK_MODEL_KEY) == MODEL
        assert rec.store.stats()["vectors"] == {MODEL: 1}
    with Recommender(private, pack=pack) as rec:
        assert rec.notices == []
        assert rec.recommend("me", domain="kitchen").notes == []


# -- 5. the device's own items beside the pack ---------------------------------------------


def test_a_device_item_is_encoded_with_the_packs_model_and_recommended(
    pack: Path, tmp_path: Path
) -> None:
    private = tmp_path / "me.db"
    where = ("--pack", str(pack), "--db", str(private))
    items = tmp_path / "mine.jsonl"
    items.write_text(
        json.dumps({"id": "dev-kettle", "domain": "kitchen", "title": "green tea kettle"}) + "\n"
    )
    added = invoke(*where, "add", "items", str(items))
    assert_clean(added, 0)
    assert added.stdout.startswith(f"stored 1 items from {items}")
    encoded = invoke(*where, "encode")
    assert_clean(encoded, 0)
    assert encoded.stdout.startswith("encoded 1 item(s)") and f"model {MODEL})" in encoded.stdout

    with Recommender(private, pack=pack) as rec:
        record_owned(rec)
        whole = rec.recommend("me", domain="kitchen", k=KITCHEN + 1, include_seen=True)
        assert len(whole.items) == KITCHEN + 1 and "dev-kettle" in ids(whole)
        assert whole.notes == []  # nothing left unencoded
        mine = whole.items[ids(whole).index("dev-kettle")]
        assert (mine.domain, mine.title) == ("kitchen", "green tea kettle")

        rec.record("me", "dev-kettle", "purchase", time=T0 + 10)
        after = rec.recommend("me", domain="kitchen", k=KITCHEN + 1)
        assert after.history_size == 4 and "dev-kettle" not in ids(after)
        assert len(after.items) == KITCHEN + 1 - 3

        with pytest.raises(InputError, match=r"record\(\):1: unknown item 'nowhere-1'"):
            rec.record("me", "nowhere-1")
        assert rec.store.stats()["events"] == 4

    events = tmp_path / "more.jsonl"
    events.write_text(
        "".join(
            json.dumps({"user": "me", "item": item}) + "\n"
            for item in ("k001", "nowhere-2", "dev-kettle")
        )
    )
    refused = invoke(*where, "add", "events", str(events))
    assert_clean(refused, 1)
    assert refused.stdout == ""
    assert f"{events}:2: unknown item 'nowhere-2'" in refused.stderr
    assert "nothing from" in refused.stderr
    with Store(private) as store:
        assert store.stats()["events"] == 4


# -- 7. a model that is not the pack's -----------------------------------------------------


def test_a_model_other_than_the_packs_is_an_input_error(pack: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        Recommender(tmp_path / "me.db", OTHER_MODEL, pack=pack)
    message = str(caught.value)
    assert MODEL in message and OTHER_MODEL in message and str(pack) in message
    assert not list(tmp_path.glob("me.db*"))
    with Recommender(tmp_path / "me.db", MODEL, pack=pack) as rec:  # its own model is fine
        assert rec.model == MODEL
