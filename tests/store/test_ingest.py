"""Reading files and storing items and events: formats, column mapping, bad input."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from localrec.errors import InputError
from localrec.store.db import DeleteReport, Store
from localrec.store.formats import BadLine, read_records
from localrec.store.ingest import (
    EventColumns,
    ItemColumns,
    add_events,
    add_events_file,
    add_items,
    add_items_file,
)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "t.db") as s:
        yield s


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


ITEMS = [
    {"id": "b1", "domain": "books", "title": "The Three-Body Problem", "author": "Liu Cixin"},
    {"id": "m1", "domain": "music", "title": "Kind of Blue", "artist": "Miles Davis"},
    {"id": "m2", "domain": "music", "title": "Blue Train &amp; more"},
]


def dump(rows: list[dict[str, Any]]) -> dict[str, str]:
    header = sorted({k for r in rows for k in r})
    csv_lines = [",".join(header)] + [",".join(str(r.get(h, "")) for h in header) for r in rows]
    tsv_lines = ["\t".join(header)] + ["\t".join(str(r.get(h, "")) for h in header) for r in rows]
    return {
        "csv": "\n".join(csv_lines) + "\n",
        "tsv": "\n".join(tsv_lines) + "\n",
        "jsonl": "\n".join(json.dumps(r) for r in rows) + "\n",
        "json": json.dumps(rows, indent=2),
    }


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json"])
def test_every_format_stores_the_same_items(store: Store, tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path / f"items.{fmt}", dump(ITEMS)[fmt])
    report = add_items_file(store, path)
    assert report.stored == 3 and not report.skipped
    rows = store.get_items(["b1", "m1", "m2"])
    assert rows["b1"].domain == "books" and rows["b1"].title == "The Three-Body Problem"
    assert rows["m2"].title == "Blue Train & more"  # entities decoded
    assert rows["m1"].attributes == {"artist": "Miles Davis"}


def test_json_array_streams_across_chunk_boundaries(store: Store, tmp_path: Path) -> None:
    rows = [{"id": f"i{n}", "domain": "d", "title": "t" * (n % 300 + 1)} for n in range(3000)]
    path = write(tmp_path / "big.json", json.dumps(rows))
    assert add_items_file(store, path).stored == 3000
    assert store.get_items(["i2999"])["i2999"].title == "t" * (2999 % 300 + 1)


def test_text_columns_and_set_domain(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "sku,name,genre\n1,Kind of Blue,jazz\n")
    columns = ItemColumns(id="sku", set_domain="music", text=("name", "genre"))
    add_items_file(store, path, columns)
    row = store.get_items(["1"])["1"]
    assert (row.domain, row.title, row.fields) == ("music", "Kind of Blue", {"genre": "jazz"})


def test_items_are_updated_and_deleted(store: Store) -> None:
    add_items(store, ITEMS)
    add_items(store, [{"id": "m1", "domain": "music", "title": "Kind of Blue (Legacy)"}])
    assert store.get_items(["m1"])["m1"].title == "Kind of Blue (Legacy)"
    add_events(store, [{"user": "u", "item": "m1"}])
    assert store.delete_items(["m1", "nope"]) == DeleteReport(deleted=1, unknown=("nope",))
    assert store.get_items(["m1"]) == {}
    assert store.stats()["events"] == 0  # deleted with the item


def test_events_with_time_value_and_review(store: Store) -> None:
    add_items(store, ITEMS)
    report = add_events(
        store,
        [
            {
                "user": "u1",
                "item": "b1",
                "action": "Rate",
                "value": "5",
                "time": "2024-01-02T03:04:05Z",
            },
            {"user": "u1", "item": "m1", "time": 1700000000, "review": "lovely"},
        ],
    )
    assert report.stored == 2
    events = store.user_events("u1")
    assert [(e.item_id, e.action) for e, _ in events] == [("m1", "purchase"), ("b1", "rate")]
    assert events[1][0].value == 5.0 and events[0][0].review == "lovely"


def _db_state(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [
            *conn.execute("SELECT * FROM items ORDER BY id"),
            *conn.execute("SELECT * FROM events ORDER BY id"),
        ]
    finally:
        conn.close()


BAD_ITEM_FILES = [
    ("missing.csv", "sku,title\n1,x\n", "missing required column 'id'", 2),
    (
        "dup.jsonl",
        '{"id":"a","domain":"d","title":"x"}\n{"id":"a","domain":"d","title":"y"}\n',
        "duplicate item id 'a' (first on line 1)",
        2,
    ),
    ("empty.csv", "id,domain,title\n1,d,   \n", "empty title", 2),
    ("utf8.csv", b"id,domain,title\n1,d,ok\n2,d,caf\xe9\n", "invalid UTF-8", 3),
    (
        "trunc.jsonl",
        '{"id":"a","domain":"d","title":"x"}\n{"id":"b","domain":"d","tit',
        "invalid JSON",
        2,
    ),
    ("ragged.csv", "id,domain,title\n1,d,x\n2,d,y,extra\n", "ragged row", 3),
    ("trunc.json", '[{"id":"a","domain":"d","title":"x"}, {"id":"b"', "invalid JSON", 1),
    ("nested.jsonl", '{"id":' + "[" * 100000 + "]" * 100000 + "}\n", "", 1),
    ("ctrl.jsonl", '{"id":"a\\u0000b","domain":"d","title":"x"}\n', "control characters", 1),
    # Values of the wrong kind are refused, not stored as a repr or a 'nan'.
    ("list.jsonl", '{"id":"a","domain":"d","title":["x","y"]}\n', "column 'title' must be text", 1),
    ("nan.jsonl", '{"id":"a","domain":"d","title":NaN}\n', "column 'title' must be text", 1),
    ("fid.jsonl", '{"id":8.0,"domain":"d","title":"x"}\n', "a string or an integer, got 8.0", 1),
    ("inf.jsonl", '{"id":1e400,"domain":"d","title":"x"}\n', "a string or an integer, got inf", 1),
]


@pytest.mark.parametrize(("name", "content", "message", "line"), BAD_ITEM_FILES)
def test_bad_item_files_change_nothing(
    store: Store, tmp_path: Path, name: str, content: str | bytes, message: str, line: int
) -> None:
    add_items(store, ITEMS)
    before = _db_state(store.path)
    path = write(tmp_path / name, content)
    with pytest.raises(InputError) as info:
        add_items_file(store, path)
    assert str(path) in str(info.value)
    assert f":{line}:" in str(info.value)
    assert message in str(info.value)
    assert _db_state(store.path) == before


BAD_EVENT_ROWS = [
    ({"user": "u", "item": "zzz"}, "unknown item 'zzz'"),
    ({"user": "u", "item": "b1", "value": "five"}, "value 'five' is not a number"),
    ({"user": "u", "item": "b1", "time": "yesterday"}, "neither a number nor an ISO 8601"),
    ({"item": "b1"}, "missing required column 'user'"),
    ({"user": "u", "item": "b1", "action": "DROP TABLE items;--"}, "short lowercase word"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_EVENT_ROWS)
def test_bad_events_change_nothing(
    store: Store, tmp_path: Path, bad: dict[str, Any], message: str
) -> None:
    add_items(store, ITEMS)
    add_events(store, [{"user": "u0", "item": "m1"}])
    before = _db_state(store.path)
    rows = [{"user": "u", "item": "m1"}, bad, {"user": "u", "item": "m2"}]
    path = write(tmp_path / "events.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(InputError, match=f"events.jsonl:2: .*{message}"):
        add_events_file(store, path)
    assert _db_state(store.path) == before


def test_skip_invalid_keeps_the_good_rows_and_reports_the_bad(store: Store, tmp_path: Path) -> None:
    add_items(store, ITEMS)
    path = write(
        tmp_path / "events.jsonl",
        '{"user":"u","item":"m1"}\n{"user":"u","item":"zzz"}\n{"user":"u","ite\n{"user":"u","item":"m2","value":"x"}\n{"user":"u","item":"b1"}\n',
    )
    report = add_events_file(store, path, skip_invalid=True)
    assert report.stored == 2
    assert [line for line, _ in report.skipped] == [2, 3, 4]
    assert [e.item_id for e, _ in store.user_events("u")] == ["m1", "b1"]


def test_sql_looking_values_are_only_data(store: Store) -> None:
    evil = "'; DROP TABLE items;--"
    add_items(store, [{"id": evil, "domain": evil, "title": evil, evil: evil}])
    add_events(store, [{"user": evil, "item": evil}])
    row = store.get_items([evil])[evil]
    assert row.domain == evil and row.attributes == {evil: evil}
    assert store.stats()["items"] == {evil: 1}


def test_event_ingest_streams_a_large_file(store: Store, tmp_path: Path) -> None:
    add_items(store, ITEMS)
    path = tmp_path / "many.csv"
    with open(path, "w") as fh:
        fh.write("user,item,time\n")
        for n in range(50_000):
            fh.write(f"u{n % 997},{('b1', 'm1', 'm2')[n % 3]},{n}\n")
    assert add_events_file(store, path, EventColumns()).stored == 50_000
    assert store.stats()["events"] == 50_000


def test_readers_yield_bad_lines_rather_than_stopping(tmp_path: Path) -> None:
    path = write(tmp_path / "x.jsonl", '{"a":1}\n[1]\nnot json\n{"b":2}\n')
    out = list(read_records(path))
    assert [line for line, _ in out] == [1, 2, 3, 4]
    assert isinstance(out[1][1], BadLine) and isinstance(out[2][1], BadLine)


@pytest.mark.parametrize(
    ("name", "message"),
    [("x.txt", "pass --format"), ("nope.csv", "no such file")],
)
def test_unreadable_sources(tmp_path: Path, name: str, message: str) -> None:
    if name == "x.txt":
        write(tmp_path / name, "a")
    with pytest.raises(InputError, match=message):
        list(read_records(tmp_path / name))


def test_a_text_column_no_row_has_is_refused(store: Store, tmp_path: Path) -> None:
    """A typo in --text would silently leave a column out of every item's text."""
    add_items(store, ITEMS)
    before = _db_state(store.path)
    path = write(tmp_path / "custom.csv", "sku,name,brand\ns1,Mug,Acme\n")
    columns = ItemColumns(id="sku", domain=None, set_domain="kitchen", text=("name", "brnad"))
    with pytest.raises(InputError, match=r"no row has the text column\(s\) 'brnad'") as info:
        add_items_file(store, path, columns)
    assert "columns: brand, name, sku" in str(info.value)
    assert "nothing from" in str(info.value)
    assert _db_state(store.path) == before


@pytest.mark.parametrize("domain", ["", "   ", "a\x00b"])
def test_a_blank_set_domain_is_refused(store: Store, tmp_path: Path, domain: str) -> None:
    add_items(store, ITEMS)
    before = _db_state(store.path)
    path = write(tmp_path / "custom.csv", "sku,name\ns1,Mug\n")
    columns = ItemColumns(id="sku", domain=None, set_domain=domain, text=("name",))
    with pytest.raises(InputError, match="--set-domain"):
        add_items_file(store, path, columns)
    assert _db_state(store.path) == before


def test_set_action_is_checked_once_and_lowercased(store: Store, tmp_path: Path) -> None:
    add_items(store, ITEMS)
    path = write(tmp_path / "events.csv", "user,item\nu,m1\n")
    report = add_events_file(store, path, EventColumns(set_action=" PURCHASE "))
    assert report.stored == 1 and store.user_events("u")[0][0].action == "purchase"
    before = _db_state(store.path)
    with pytest.raises(InputError, match=r"^--set-action 'buy it': an action is a short"):
        add_events_file(store, path, EventColumns(set_action="buy it"))
    assert _db_state(store.path) == before


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": b"k9", "domain": "d", "title": "x"}, "a string or an integer, got b'k9'"),
        ({"id": "k9", "domain": "d", "title": b"bytes"}, "column 'title' must be text"),
    ],
)
def test_bytes_are_refused_not_stored_as_their_repr(
    store: Store, row: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        add_items(store, [row])
    assert store.get_items(["k9", "b'k9'"]) == {}
