"""The CLI of a device serving from a pack: `localrec --pack FILE --db PRIVATE ...`.

Events added with `add events` may name the pack's items, `recommend` ranks the pack for
them as the Python API does, `stats` and `forget` work on the private database, and a
missing pack stops a command in one line before the private database is created.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localrec.recommend.recommender import Recommender
from localrec.store.db import Store
from tests.helpers import assert_clean, invoke, write_jsonl
from tests.packs.corpus import vendor_and_pack

OWNED = ("k000", "b011", "k021")


@pytest.fixture
def pack(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, pulled_home: Path, model_home: Path
) -> Path:
    return vendor_and_pack(tmp_path_factory, pulled_home, tmp_path)[1]


def alice_events(path: Path, items: tuple[str, ...] = OWNED) -> Path:
    return write_jsonl(
        path,
        [
            {"user": "alice", "item": item, "action": "purchase", "time": 1_600_000_000 + j}
            for j, item in enumerate(items)
        ],
    )


def test_recommend_json_for_a_user_added_with_add_events(pack: Path, tmp_path: Path) -> None:
    """`add events` takes the pack's item ids; `recommend --json` then lists what the API
    lists, leaving the user's items out; `stats` counts the events, `forget` removes them,
    and the pack's bytes stay as they were."""
    before = pack.read_bytes()
    private = tmp_path / "me.db"
    where = ("--pack", str(pack), "--db", str(private))
    events = alice_events(tmp_path / "alice.jsonl")
    added = invoke(*where, "add", "events", str(events))
    assert_clean(added, 0)
    assert added.stdout == f"stored 3 events from {events}\n" and added.stderr == ""

    shown = invoke(*where, "recommend", "alice", "--domain", "kitchen", "--json")
    assert_clean(shown, 0)
    assert shown.stderr == ""  # no note: a history, nothing unencoded, the same model
    shown_list = json.loads(shown.stdout)
    assert (shown_list["fallback"], shown_list["notes"]) == (None, [])
    rows = shown_list["items"]
    assert len(rows) == 10 and {r["domain"] for r in rows} == {"kitchen"}
    assert not {"k000", "k021"} & {r["item_id"] for r in rows}
    with Recommender(private, pack=pack) as rec:
        api = rec.recommend("alice", domain="kitchen")
    assert api.history_size == 3
    assert [(r["item_id"], r["score"]) for r in rows] == [
        (r.item_id, round(r.score, 6)) for r in api.items
    ]

    stats = invoke(*where, "stats", "--json")
    assert_clean(stats, 0)
    data = json.loads(stats.stdout)
    assert (data["users"], data["events"], data["events_skipped"], data["items_total"]) == (
        1,
        3,
        0,
        0,
    )
    assert data["pack"]["path"] == str(pack) and data["pack"]["min_users"] == 2

    forgotten = invoke(*where, "forget", "alice", "--yes")
    assert_clean(forgotten, 0)
    assert forgotten.stdout.startswith("deleted 3 row(s) of user 'alice'")
    cold = invoke(*where, "recommend", "alice", "--domain", "kitchen", "--json")
    assert_clean(cold, 0)
    assert "user 'alice' has no usable history; showing the most popular kitchen" in cold.stderr
    cold_list = json.loads(cold.stdout)
    assert cold_list["fallback"] == "popular" and len(cold_list["items"]) == 10
    assert cold_list["notes"] == [cold.stderr.strip()]
    assert pack.read_bytes() == before


def test_an_unknown_item_in_add_events_names_the_file_and_line(pack: Path, tmp_path: Path) -> None:
    private = tmp_path / "me.db"
    where = ("--pack", str(pack), "--db", str(private))
    events = alice_events(tmp_path / "bad.jsonl", ("k000", "b011", "not-in-the-pack"))
    refused = invoke(*where, "add", "events", str(events))
    assert_clean(refused, 1)
    assert refused.stdout == ""
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {events}:3: unknown item ")
    assert "'not-in-the-pack'" in lines[0] and f"nothing from {events} was stored" in lines[0]
    # The first import failed, so the private database it would have created is gone.
    assert sorted(p.name for p in tmp_path.glob("me.db*")) == []

    # Into an existing private database: nothing of the file is stored either.
    assert_clean(invoke(*where, "add", "events", str(alice_events(tmp_path / "ok.jsonl"))), 0)
    assert_clean(invoke(*where, "add", "events", str(events)), 1)
    with Store(private) as store:
        assert store.stats()["events"] == 3


@pytest.mark.parametrize(
    "command",
    [
        ["recommend", "alice", "--domain", "kitchen", "--json"],
        ["stats", "--json"],
        ["add", "events", "EVENTS"],
        ["similar", "k000"],
    ],
    ids=["recommend", "stats", "add-events", "similar"],
)
def test_a_missing_pack_is_one_line_and_no_private_db(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nowhere.lrpack"
    events = str(alice_events(tmp_path / "alice.jsonl"))
    args = [events if a == "EVENTS" else a for a in command]
    result = invoke("--pack", str(missing), "--db", str(tmp_path / "me.db"), *args)
    assert_clean(result, 1)
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {missing}: no such pack file; build one with `localrec pack build`\n"
    )
    assert sorted(p.name for p in tmp_path.glob("me.db*")) == []


def test_add_items_refuses_a_missing_pack_too(tmp_path: Path) -> None:
    items = write_jsonl(tmp_path / "mine.jsonl", [{"id": "d1", "domain": "kitchen", "title": "x"}])
    missing = tmp_path / "nowhere.lrpack"
    where = ("--pack", str(missing), "--db", str(tmp_path / "me.db"))
    result = invoke(*where, "add", "items", str(items))
    assert_clean(result)
    assert result.exit_code == 1 and str(missing) in result.stderr
    assert sorted(p.name for p in tmp_path.glob("me.db*")) == []


def test_a_device_item_may_not_take_a_pack_items_id(pack: Path, tmp_path: Path) -> None:
    """An item added beside a pack with one of the pack's ids would be hidden behind the
    pack's: refused, naming the line and the id, and nothing is stored."""
    items = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"id": "my-1", "domain": "books", "title": "My own notebook"},
            {"id": "k000", "domain": "books", "title": "Not the pack's kettle"},
        ],
    )
    db = tmp_path / "me.db"
    result = invoke("--pack", str(pack), "--db", str(db), "add", "items", str(items))
    assert_clean(result, 1)
    assert f"{items}:2: item id 'k000' is the pack's" in result.stderr
    assert not db.exists()
