"""Stale vectors: after a title or template change, `recommend` says which items it ranks
by their old text and `stats` counts them, without rendering the catalogue on every call."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localrec.recommend.recommender import Recommender
from localrec.store import item_vectors
from localrec.store.config import set_config
from localrec.store.db import Store
from localrec.store.ingest import add_events, add_items
from localrec.store.item_vectors import (
    database_stats,
    encode_items,
    mark_encoded,
    pending_items,
    stale_count,
)
from tests.conftest import DEFAULT_MODEL
from tests.fakes import FakeEncoder
from tests.helpers import run

BOOKS = [
    {"id": f"b{i}", "domain": "books", "title": t, "author": a}
    for i, (t, a) in enumerate(
        [("Dune", "Frank Herbert"), ("Emma", "Jane Austen"), ("Ubik", "Philip K. Dick")]
    )
]
MUSIC = [{"id": "m1", "domain": "music", "title": "Kind of Blue", "artist": "Miles Davis"}]


def _encoder() -> FakeEncoder:
    # The default model's name, so that `stats` finds its prefix in the registry.
    return FakeEncoder(name=DEFAULT_MODEL, dim=384)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "s.db"
    with Store(path) as store:
        add_items(store, BOOKS + MUSIC)
        add_events(store, [{"user": "ann", "item": "b0", "time": 1}])
        encode_items(store, _encoder())
    yield path


def _stale(store: Store, domain: str = "books") -> int:
    return stale_count(store, DEFAULT_MODEL, "", domain)


def test_nothing_is_stale_after_encode_and_encode_leaves_the_count(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_rendering(*_: Any, **__: Any) -> Any:
        raise AssertionError("rendered the catalogue")

    monkeypatch.setattr(item_vectors, "iter_item_texts", no_rendering)
    with Store(db) as store:
        assert (_stale(store), _stale(store, "music")) == (0, 0)


def test_a_title_change_makes_one_item_stale_until_encode(db: Path) -> None:
    with Store(db) as store:
        add_items(store, [{**BOOKS[1], "title": "Emma (annotated)"}])
        assert (_stale(store), _stale(store, "music")) == (1, 0)
        with Recommender(db, encoder=_encoder()) as rec:
            listed = rec.recommend("ann", domain="books")
            note = (
                "1 books item(s) changed after they were encoded (their text, or "
                "template.books): their vectors still hold the old text; run `localrec encode`"
            )
            assert listed.notes == [note]
            # ann's history is a book: a music list rests on its vectors too.
            assert rec.recommend("ann", domain="music").notes == [note]
            assert rec.recommend("bob", domain="music").notes[1:] == []
            assert rec.stats()["stale_vectors"] == {DEFAULT_MODEL: 1}
        assert encode_items(store, _encoder()).encoded == 1
        assert _stale(store) == 0
        assert database_stats(store)["stale_vectors"] == {DEFAULT_MODEL: 0}


def test_a_template_change_makes_its_domain_stale(db: Path) -> None:
    with Store(db) as store:
        set_config(store, "template.books", "{title} by {author}")
        assert (_stale(store), _stale(store, "music")) == (3, 0)
        store.config_unset("template.books")
        assert _stale(store) == 0
        # An item without a vector yet is not stale: `recommend` names it apart.
        add_items(store, [{"id": "b9", "domain": "books", "title": "Solaris", "author": "Lem"}])
        assert _stale(store) == 0


def test_the_count_is_worked_out_once_per_change(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = item_vectors.iter_item_texts

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1:])
        return real(*args, **kwargs)

    monkeypatch.setattr(item_vectors, "iter_item_texts", counting)
    with Store(db) as store:
        add_items(store, [{**BOOKS[0], "title": "Dune Messiah"}])
        assert [_stale(store) for _ in range(3)] == [1, 1, 1]
        assert len(calls) == 1
    with Store(db) as again:  # another process: the count is in the database
        assert _stale(again) == 1 and len(calls) == 1


def test_a_count_never_waits_for_another_writer(db: Path) -> None:
    """The count is a cache: while another process holds the write lock, it is worked out
    and returned at once, and kept next time."""
    with Store(db) as store:
        add_items(store, [{**BOOKS[0], "title": "Dune Messiah"}])
    writer = sqlite3.connect(db)
    try:
        writer.execute("BEGIN IMMEDIATE")
        with Store(db) as store:
            start = time.perf_counter()
            assert _stale(store) == 1
            assert time.perf_counter() - start < 5  # the busy timeout is 30 s
            assert store.generation_count(_key("books")) is None
    finally:
        writer.rollback()
        writer.close()
    with Store(db) as store:
        assert _stale(store) == 1 and store.generation_count(_key("books")) == 1


def _key(domain: str) -> str:
    return item_vectors._stale_key(DEFAULT_MODEL, "", domain, None)


@pytest.mark.parametrize("other_write", [False, True])
def test_an_encoder_of_its_own_keeps_the_count_unless_another_write_came_between(
    db: Path, other_write: bool
) -> None:
    """What the Ray engine does: `pending_items`, its own `put_vectors`, `mark_encoded`."""
    encoder = _encoder()
    with Store(db) as store:
        add_items(store, [{**BOOKS[0], "title": "Dune Messiah"}])
        pending = pending_items(store, encoder.spec)
        assert [i for i, _, _ in pending.items] == ["b0"] and pending.skipped == 3
        assert pending.covered == {"books", "music"}
        with store.write() as conn:
            vectors = encoder.encode([text for _, text, _ in pending.items])
            store.put_vectors(conn, encoder.name, ["b0"], [pending.items[0][2]], vectors)
        if other_write:
            with store.write() as conn:
                store.put_vectors(conn, encoder.name, ["m1"], ["x"], vectors)
        mark_encoded(store, pending, writes=1)
        kept = None if other_write else 0
        assert store.generation_count(_key("books")) == kept
        assert store.generation_count(_key("music")) == kept


def test_stats_counts_stale_vectors(db: Path) -> None:
    with Store(db) as store:
        set_config(store, "template.music", "{title} by {artist}")
    code, out, _ = run("--db", str(db), "stats")
    assert code == 0
    assert f"  {DEFAULT_MODEL:<20} 4 (1 stale: their text changed; run `localrec encode`)" in out
    code, out, _ = run("--db", str(db), "stats", "--json")
    assert json.loads(out)["stale_vectors"] == {DEFAULT_MODEL: 1}
