"""What a list tells its reader: explanations by title with their own cosine or CF share,
--no-adapter as adapter=False, a domain always named, score's order not shown as a rank,
and threshold suggestions that warn when too few users were replayed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localrec.cli import recommend as cli_recommend
from localrec.recommend.recommender import Recommender
from localrec.recommend.results import OTHERS_NEXT
from localrec.recommend.threshold import MIN_REPLAYED_USERS, suggest_threshold
from localrec.store.config import set_config
from localrec.store.db import Store
from localrec.store.ingest import add_events, add_items
from localrec.store.item_vectors import encode_items
from localrec.tuning.storage import store_adapter
from tests.conftest import DEFAULT_MODEL
from tests.fakes import FakeEncoder
from tests.helpers import run
from tests.synthetic import purchases, tuned_database

BOOKS = [
    {"id": "b1", "domain": "books", "title": "Dune", "author": "Frank Herbert"},
    {"id": "b2", "domain": "books", "title": "The Martian", "author": "Andy Weir"},
    {"id": "b3", "domain": "books", "title": "Emma", "author": "Jane Austen"},
]
MUSIC = [
    {"id": "m1", "domain": "music", "title": "Dune", "author": "Hans Zimmer"},
    {"id": "m2", "domain": "music", "title": "Blue Train", "author": "John Coltrane"},
    # The very text the books template makes of b2: the fake encoder's cosine 1.
    {"id": "m3", "domain": "music", "title": "The Martian by Andy Weir (a novel)"},
]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "o.db"
    with Store(path) as store:
        add_items(store, BOOKS + MUSIC)
        set_config(store, "template.books", "{title} by {author} (a novel)")
        add_events(
            store,
            [
                {"user": "ann", "item": "b1", "action": "purchase", "time": 1},
                {"user": "ann", "item": "b2", "action": "rate", "value": 5, "time": 2},
            ],
        )
        encode_items(store, _encoder())
    yield path


def _encoder() -> FakeEncoder:
    # The default model's name: the CLI reads the vectors of the default model.
    return FakeEncoder(name=DEFAULT_MODEL, dim=384)


def test_an_explanation_has_the_title_and_the_embedded_text_apart(db: Path) -> None:
    with Recommender(db, encoder=_encoder()) as rec:
        listed = rec.recommend("ann", domain="music", k=3, explain=True, user_vector="max-sim")
    assert listed.items[0].item_id == "m3"
    rated = listed.items[0].because[0]
    assert (rated.title, rated.action, rated.value) == ("The Martian", "rate", 5.0)
    assert rated.text == "The Martian by Andy Weir (a novel)"
    assert rated.cf_share is None and rated.cosine == pytest.approx(1.0, abs=1e-5)
    assert rated.similarity == rated.cosine
    detail = listed.to_dict()["items"][0]["because_detail"][0]
    assert {"title", "text", "action", "value", "cosine", "cf_share", "reason"} <= detail.keys()


def test_the_table_says_what_the_user_did(db: Path) -> None:
    code, out, _ = run(
        "--db", str(db), "recommend", "ann", "--domain", "music", "--explain",
        "--user-vector", "max-sim",
    )  # fmt: skip
    assert code == 0
    assert out.splitlines()[0].split() == ["rank", "item_id", "score", "title", "because", "you"]
    assert "rated The Martian 5/5 (similar text, cosine 1.00)" in out
    assert "by Andy Weir (a novel)" not in out.split("rated")[1]  # the title, not the text


def test_score_keeps_the_order_given_and_shows_no_rank(db: Path) -> None:
    code, out, _ = run("--db", str(db), "score", "ann", "m2", "m1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["item_id", "domain", "score", "title"]
    assert [line.split()[0] for line in lines[2:]] == ["m2", "m1"]


@pytest.mark.parametrize("domain", [None, 3, ""])
def test_recommend_needs_a_domain(db: Path, domain: Any) -> None:
    from localrec.errors import InputError

    with (
        Recommender(db, encoder=_encoder()) as rec,
        pytest.raises(InputError, match="domain must name the domain to recommend from"),
    ):
        rec.recommend("ann", domain=domain)


def test_no_adapter_in_the_cli_is_adapter_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = purchases([[3, 7], [3, 64], [7, 71], [3, 64]])
    path, adapter, _, _ = tuned_database(tmp_path, events)
    adapter.domains[1].hybrid_weight = {"mixed": 1.0, "cross": 1.0}
    with Store(path) as store:
        store_adapter(store, adapter)
    seen: list[dict[str, Any]] = []

    def fake_recommender(ctx: Any, model: Any, **options: Any) -> Recommender:
        seen.append(options)
        return Recommender(path, encoder=FakeEncoder(), **options)

    monkeypatch.setattr(cli_recommend, "open_recommender", fake_recommender)
    lists = {}
    for flag in ([], ["--no-adapter"]):
        code, out, _ = run("recommend", "u", "--domain", "b", "--json", *flag)
        assert code == 0
        lists[bool(flag)] = json.loads(out)
    assert [o["adapter"] for o in seen] == [True, False]
    assert lists[False]["user_vector"] == "tuned-hybrid"
    assert lists[True]["user_vector"] == "zero-shot"
    with Recommender(path, encoder=FakeEncoder(), adapter=False) as rec:
        api = rec.recommend("u", domain="b").to_dict()
    assert lists[True] == api


def test_a_cf_reason_has_a_share_and_no_cosine(tmp_path: Path) -> None:
    events = purchases([[3, 7], [3, 64], [3, 64]])
    path, adapter, _, _ = tuned_database(tmp_path, events)
    adapter.domains[1].hybrid_weight = {"mixed": 1.0, "cross": 1.0}
    with Store(path) as store:
        store_adapter(store, adapter)
    with Recommender(path, encoder=FakeEncoder()) as rec:
        got = rec.recommend("u", domain="b", k=60, explain=True)
    [why] = {r.item_id: r.because for r in got}["64"]
    assert (why.item_id, why.title, why.reason) == ("3", "t3", OTHERS_NEXT)
    assert (why.cf_share, why.cosine, why.similarity) == (1.0, None, 1.0)


def test_threshold_suggest_warns_below_the_minimum(db: Path) -> None:
    with Store(db) as store:
        add_events(store, [{"user": "ann", "item": "m1", "time": 3}])
    with Recommender(db, encoder=_encoder()) as rec:
        report = suggest_threshold(rec, "music")
    assert report.users == 1 < MIN_REPLAYED_USERS and not report.enough_users
    assert report.notes[0].startswith("only 1 user(s) replayed, fewer than 30: the suggested θ")
    code, out, err = run("--db", str(db), "threshold", "suggest", "--domain", "music", "--json")
    assert code == 0 and err == f"warning: {report.notes[0]}\n"
    data = json.loads(out)
    assert (data["users"], data["min_users"], data["enough_users"]) == (1, 30, False)
    assert data["notes"] == report.notes
