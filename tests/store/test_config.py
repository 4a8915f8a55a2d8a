"""`config set` checks what it stores: a template's domain and fields, an action's weight;
and a database's own action weights count in the lists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from localrec.errors import InputError
from localrec.recommend.recommender import Recommender
from localrec.store.config import action_weights, set_config
from localrec.store.db import Store
from localrec.store.ingest import add_events, add_items
from localrec.store.item_vectors import encode_items
from tests.fakes import FakeEncoder
from tests.helpers import run

BOOKS = [
    {"id": "b1", "domain": "books", "title": "Dune", "author": "Frank Herbert", "year": 1965},
    {"id": "b2", "domain": "books", "title": "Emma", "author": "Jane Austen"},
    {"id": "b3", "domain": "books", "title": "Ubik", "author": "Philip K. Dick"},
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "c.db") as s:
        add_items(s, BOOKS)
        yield s


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "template.bookz",
            "{title}",
            "template.bookz: unknown domain 'bookz'; the database has: books",
        ),
        (
            "template.books",
            "{title} by {autor}",
            "template.books: no books item has {autor}; the fields of its items are: author, "
            "title, year",
        ),
        ("template.books", "{title} {x} {y}", "no books item has {x}, {y};"),
        ("template.books", "{title", "invalid template '{title'"),
        ("action.read", "0", "action.read '0': an action's weight is a number above 0"),
        ("action.read", "-1", "an action's weight is a number above 0 and at most 10"),
        ("action.read", "11", "an action's weight is a number above 0 and at most 10"),
        ("action.read", "nan", "an action's weight is a number above 0"),
        ("action.read", "lots", "action.read 'lots': an action's weight"),
        ("action.Read", "0.5", "action.Read: an action is a short lowercase word"),
        ("colour", "red", "unknown configuration key 'colour'; the keys are template.DOMAIN"),
    ],
    ids=[
        "unknown-domain",
        "unknown-field",
        "two-unknown-fields",
        "malformed",
        "zero",
        "negative",
        "too-large",
        "nan",
        "not-a-number",
        "not-an-action-word",
        "unknown-key",
    ],
)
def test_config_set_refuses_what_would_not_work(
    store: Store, key: str, value: str, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        set_config(store, key, value)
    assert message in str(caught.value)
    assert store.config_items() == {}


def test_a_field_some_items_lack_is_kept_with_a_note(store: Store) -> None:
    assert set_config(store, "template.books", "{title} by {author}") == []
    assert set_config(store, "template.books", "{title} ({year})") == [
        "{year} is empty for 2 of 3 books items: it renders as nothing there"
    ]
    assert store.config_get("template.books") == "{title} ({year})"


def test_the_cli_prints_the_note_and_refuses_an_unknown_domain(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    with Store(db) as store:
        add_items(store, BOOKS)
    assert run("--db", db, "config", "set", "template.books", "{title} ({year})") == (
        0,
        "template.books = {title} ({year})\n",
        "{year} is empty for 2 of 3 books items: it renders as nothing there\n",
    )
    code, out, err = run("--db", db, "config", "set", "template.bookz", "{title}")
    assert (code, out) == (1, "")
    assert err == "Error: template.bookz: unknown domain 'bookz'; the database has: books\n"


def test_action_weights_are_read_back_and_count_in_the_profile(store: Store) -> None:
    add_events(
        store,
        [
            {"user": "ann", "item": "b1", "action": "read", "time": 1},
            {"user": "ann", "item": "b2", "action": "purchase", "time": 2},
        ],
    )
    encode_items(store, FakeEncoder())
    with Recommender(store.path, encoder=FakeEncoder()) as rec:
        before = rec.profile("ann", user_vector="item-mean")
        set_config(store, "action.read", "2")
        assert action_weights(store) == {"read": 2.0}
        after = rec.profile("ann", user_vector="item-mean")
    assert before.strengths is not None and after.strengths is not None
    np.testing.assert_allclose(before.strengths, [0.5, 1.0])  # "read": unknown, 0.5
    np.testing.assert_allclose(after.strengths, [2.0, 1.0])
    assert after.weights[0] > before.weights[0]
