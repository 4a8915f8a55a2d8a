"""`recommend(candidates=...)`: a list among the items a caller names, checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localrec.errors import InputError
from localrec.recommend.recommender import Recommender
from localrec.store.db import Store
from localrec.store.ingest import add_events, add_items
from localrec.store.item_vectors import encode_items
from tests.fakes import FakeEncoder

MUSIC = ["Kind of Blue", "Blue Train", "Abbey Road", "Dune", "Foundation", "Thriller"]


@pytest.fixture
def rec(tmp_path: Path) -> Iterator[Recommender]:
    path = tmp_path / "rec.db"
    with Store(path) as store:
        add_items(store, [{"id": "b0", "domain": "books", "title": "Dune"}])
        add_items(
            store, [{"id": f"m{i}", "domain": "music", "title": t} for i, t in enumerate(MUSIC)]
        )
        add_events(store, [{"user": "ann", "item": "b0"}, {"user": "ann", "item": "m0"}])
        encode_items(store, FakeEncoder())
    with Recommender(path, encoder=FakeEncoder()) as r:
        yield r


def test_a_list_among_candidates_is_the_full_lists_order_restricted_to_them(
    rec: Recommender,
) -> None:
    full = [r.item_id for r in rec.recommend("ann", domain="music", k=10, include_seen=True)]
    chosen = ["m5", "m1", "m3", "m0"]
    got = rec.recommend("ann", domain="music", candidates=chosen, k=10, include_seen=True)
    assert [r.item_id for r in got] == [i for i in full if i in chosen]
    # The user's own item is still left out unless asked for.
    assert "m0" not in [r.item_id for r in rec.recommend("ann", domain="music", candidates=chosen)]
    # k cuts the list among the candidates.
    assert len(rec.recommend("ann", domain="music", candidates=["m1", "m2"], k=1)) == 1


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        (["m1", "nope"], r"candidate\(s\) not among the encoded 'music' items: 'nope'"),
        (["m1", "b0"], r"not among the encoded 'music' items: 'b0'"),  # another domain
        (["m1", "m2", "m1"], "candidates names 'm1' twice"),
        ([], "candidates is empty"),
        ("m1", "a list of item ids, not one id"),
        ([1.5], "an item id is a string"),
    ],
)
def test_bad_candidates_are_input_errors(rec: Recommender, candidates: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        rec.recommend("ann", domain="music", candidates=candidates)
