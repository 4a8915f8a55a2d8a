"""Hostile input files: whatever an items or events file holds (any text, SQL-looking strings,
huge fields, NULs, bad UTF-8, truncation, deep nesting, lone surrogates), `add` stores it or
refuses it naming the file and line, changes nothing when it refuses, and never runs any of
it as SQL."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Literal, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localrec.errors import InputError, LocalrecError
from localrec.store.db import Store
from localrec.store.formats import BadLine, read_records
from localrec.store.ingest import (
    EventColumns,
    IngestReport,
    ItemColumns,
    add_events_file,
    add_items,
    add_items_file,
)
from tests.helpers import (
    FUZZ_RUNS,
    HUGE,
    JSON_VALUE,
    SQL_STRINGS,
    SQLISH,
    TABLES,
    TEXT,
    assert_clean,
    count,
    fuzz,
    fuzz_report,
    invoke,
    remove_db,
    tables,
    write_csv,
    write_jsonl,
)

IDENT = st.one_of(SQLISH, TEXT, st.integers(-(10**12), 10**12), HUGE)
COLUMN = st.one_of(
    st.sampled_from(["id", "domain", "title", "user", "item", "action", "value", "time"]),
    SQLISH,
    TEXT,
)
CORRUPTION = st.sampled_from(["none", "none", "nul", "truncate", "bad-utf8", "deep", "bom"])


def _item_record() -> st.SearchStrategy[dict[str, Any]]:
    plausible = st.fixed_dictionaries(
        {"id": IDENT, "domain": st.one_of(SQLISH, TEXT), "title": st.one_of(TEXT, HUGE, SQLISH)},
        optional={"brand": JSON_VALUE, "review": JSON_VALUE},
    )
    extra = st.dictionaries(COLUMN, JSON_VALUE, max_size=4)
    return st.one_of(
        plausible,
        st.tuples(plausible, extra).map(lambda t: {**t[0], **t[1]}),
        extra,
    )


def _event_record(item_ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    plausible = st.fixed_dictionaries(
        {"user": IDENT, "item": st.one_of(st.sampled_from(item_ids), IDENT)},
        optional={
            "action": st.one_of(st.sampled_from(["purchase", "rate", "VIEW", " view "]), TEXT),
            "value": st.one_of(st.integers(0, 5), st.floats(), TEXT, st.none()),
            "time": st.one_of(
                st.integers(0, 2**40), st.sampled_from(["2024-01-31T10:00:00Z", "nope"]), TEXT
            ),
            "review": st.one_of(TEXT, HUGE, SQLISH, JSON_VALUE),
        },
    )
    extra = st.dictionaries(COLUMN, JSON_VALUE, max_size=3)
    return st.one_of(plausible, st.tuples(plausible, extra).map(lambda t: {**t[0], **t[1]}))


def _encode_records(records: list[dict[str, Any]], fmt: str, ascii_json: bool) -> bytes:
    if fmt in ("jsonl", "json"):
        parts = [json.dumps(r, ensure_ascii=ascii_json, allow_nan=True) for r in records]
        text = "".join(p + "\n" for p in parts) if fmt == "jsonl" else "[" + ",\n".join(parts) + "]"
        return text.encode("utf-8")
    columns = list(dict.fromkeys(str(k) for r in records for k in r))
    out = io.StringIO()
    writer = csv.writer(out, delimiter="," if fmt == "csv" else "\t")
    writer.writerow(columns)
    for r in records:
        row = {str(k): v for k, v in r.items()}
        writer.writerow(["" if row.get(c) is None else str(row.get(c)) for c in columns])
    return out.getvalue().encode("utf-8")


def _corrupt(data: bytes, how: str, where: float, fmt: str, depth: int) -> bytes:
    at = int(len(data) * where)
    if how == "nul":
        return data[:at] + b"\x00" + data[at:]
    if how == "truncate":
        return data[:at]
    if how == "bad-utf8":
        return data[:at] + b"\xff\xfe\xc3" + data[at:]
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "deep":
        nested = b'{"id": "deep", "domain": "d", "title": "t", "x": ' + b"[" * depth
        nested += b"]" * depth + b"}"
        if fmt == "jsonl":
            return data + nested + b"\n"
        if fmt == "json" and data.endswith(b"]"):
            return data[:-1] + (b",\n" if len(data) > 2 else b"") + nested + b"]"
        return data + b"\n" + nested.replace(b",", b";") + b"\n"
    return data


LOCATED = re.compile(r"^(?P<path>.+?):(?P<line>\d+): \S")


def _assert_located(exc: LocalrecError, path: Path) -> None:
    """The error is an InputError that starts with `file:line: `."""
    assert isinstance(exc, InputError), repr(exc)
    match = LOCATED.match(str(exc))
    assert match is not None and match["path"] == str(path), str(exc)[:300]
    assert int(match["line"]) >= 1


Snapshot = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]  # items and events rows


def _snapshot(store: Store) -> Snapshot:
    conn = store._conn
    items = conn.execute("SELECT * FROM items ORDER BY id").fetchall()
    events = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
    return items, events


BASE_ITEMS = [
    {"id": s, "domain": "base", "title": f"base item {n}"} for n, s in enumerate(SQL_STRINGS[:6])
]


@pytest.fixture
def base_db(tmp_path: Path) -> Path:
    """A database whose catalogue ids are SQL-looking strings."""
    path = tmp_path / "base.db"
    with Store(path) as store:
        add_items(store, BASE_ITEMS)
    return path


def _fresh_copy(base_db: Path, directory: Path) -> Path:
    target = directory / "fuzz.db"
    remove_db(target)
    shutil.copy(base_db, target)
    return target


class HostileFile(NamedTuple):
    records: list[dict[str, Any]]
    fmt: str
    data: bytes  # the records in that format, maybe corrupted
    skip_invalid: bool
    column: str  # the name of the id or user column, maybe SQL-looking


@st.composite
def hostile_files(
    draw: st.DrawFn, record: st.SearchStrategy[dict[str, Any]], column: str
) -> HostileFile:
    records = draw(st.lists(record, max_size=6))
    fmt = draw(st.sampled_from(["csv", "tsv", "jsonl", "json"]))
    name = draw(st.one_of(st.just(column), SQLISH))
    if name != column:  # the column itself has an SQL-looking name
        records = [{name if k == column else k: v for k, v in r.items()} for r in records]
    data = _encode_records(records, fmt, ascii_json=draw(st.booleans()))
    how, where, depth = draw(CORRUPTION), draw(st.floats(0, 1)), draw(st.integers(2, 3000))
    return HostileFile(
        records, fmt, _corrupt(data, how, where, fmt, depth), draw(st.booleans()), name
    )


def _add_or_refuse(
    file: HostileFile, kind: Literal["items", "events"], base_db: Path, directory: Path
) -> tuple[Snapshot, Snapshot, IngestReport | None]:
    """`add items` or `add events` of the file on a fresh copy of the base database: the
    rows before and after, and the report (None when the file was refused, which must name
    the file and line, and change nothing)."""
    path = directory / f"{kind}.{file.fmt}"
    path.write_bytes(file.data)
    db = _fresh_copy(base_db, directory)
    with Store(db) as store:
        before = _snapshot(store)
        report: IngestReport | None = None
        try:
            fmt, skip = file.fmt, file.skip_invalid
            if kind == "items":
                columns = ItemColumns(id=file.column)
                report = add_items_file(store, path, columns, fmt=fmt, skip_invalid=skip)
            else:
                events = EventColumns(user=file.column)
                report = add_events_file(store, path, events, fmt=fmt, skip_invalid=skip)
        except LocalrecError as exc:
            _assert_located(exc, path)
            assert _snapshot(store) == before
            FUZZ_RUNS[f"{kind} files refused"] += 1
        after = _snapshot(store)
        assert store.integrity_check() == "ok"
    assert tables(db) >= TABLES
    if report is not None:
        FUZZ_RUNS[f"{kind} files stored"] += report.stored > 0
        assert all(reason for _, reason in report.skipped)
        if not file.skip_invalid:
            assert report.skipped == []
    return before, after, report


def test_fuzz_item_files(base_db: Path, tmp_path: Path) -> None:
    """Whatever the file holds, `add items` stores it or refuses it with file and line,
    changes nothing when it refuses, and never runs any of it as SQL."""

    @fuzz(70)
    @given(file=hostile_files(_item_record(), "id"))
    def prop(file: HostileFile) -> None:
        FUZZ_RUNS["items files"] += 1
        before, (after_items, after_events), report = _add_or_refuse(
            file, "items", base_db, tmp_path
        )
        assert after_events == []
        if report is not None:
            new = [row for row in after_items if row not in before[0]]
            assert len(new) <= report.stored
            assert {b["id"] for b in BASE_ITEMS} <= {row[0] for row in after_items}
            candidates = {str(r.get(file.column)).strip() for r in file.records} | {"deep"}
            assert {row[0] for row in new} <= candidates | {b["id"] for b in BASE_ITEMS}

    prop()
    fuzz_report("items files", 70)
    assert FUZZ_RUNS["items files refused"] >= 5 and FUZZ_RUNS["items files stored"] >= 5


def test_fuzz_event_files(base_db: Path, tmp_path: Path) -> None:
    """Events appended from a hostile file: exactly `stored` rows more, each pointing at a
    catalogue item, or none at all with the file and line named."""

    @fuzz(60)
    @given(file=hostile_files(_event_record([b["id"] for b in BASE_ITEMS]), "user"))
    def prop(file: HostileFile) -> None:
        FUZZ_RUNS["events files"] += 1
        (items, _), (after_items, events), report = _add_or_refuse(
            file, "events", base_db, tmp_path
        )
        assert after_items == items  # events never touch the catalogue
        if report is None:
            assert events == []
            return
        assert len(events) == report.stored
        assert {e[2] for e in events} <= {b["id"] for b in BASE_ITEMS}
        assert all(e[1] and e[1] == e[1].strip() for e in events)

    prop()
    fuzz_report("events files", 60)
    assert FUZZ_RUNS["events files refused"] >= 5 and FUZZ_RUNS["events files stored"] >= 5


def test_fuzz_read_records_raw_bytes(tmp_path: Path) -> None:
    """Arbitrary bytes in any format: records (dicts or bad lines) with increasing line
    numbers, or an InputError naming the file and line."""

    @fuzz(60)
    @given(
        lines=st.lists(st.one_of(TEXT, SQLISH, HUGE), max_size=5),
        fmt=st.sampled_from(["csv", "tsv", "jsonl", "json"]),
        raw=st.binary(max_size=200),
    )
    def prop(lines: list[str], fmt: str, raw: bytes) -> None:
        FUZZ_RUNS["raw bytes"] += 1
        path = tmp_path / f"raw.{fmt}"
        path.write_bytes("\n".join(lines).encode("utf-8") + raw)
        numbers = []
        try:
            for line, record in read_records(path, fmt):
                numbers.append(line)
                assert isinstance(record, dict | BadLine)
        except LocalrecError as exc:
            _assert_located(exc, path)
        assert numbers == sorted(numbers) and all(n >= 1 for n in numbers)

    prop()
    fuzz_report("raw bytes", 60)


@pytest.mark.parametrize("hostile", SQL_STRINGS)
def test_sql_looking_ids_domains_and_columns_are_data(
    tmp_path: Path, hostile: str, one_thread: None
) -> None:
    """The same string as item id, domain, title, user, review, id column and template key:
    stored verbatim, found again verbatim, and every table still there."""
    db = tmp_path / "sql.db"
    items = write_csv(
        tmp_path / "items.csv",
        [
            {hostile: hostile, "domain": hostile, "title": hostile},
            {hostile: "plain", "domain": hostile, "title": "plain"},
        ],
    )
    events = write_jsonl(
        tmp_path / "events.jsonl",
        [{"user": hostile, "item": hostile, "review": hostile}, {"user": "bob", "item": "plain"}],
    )
    assert_clean(invoke("--db", str(db), "add", "items", str(items), "--id", hostile), 0)
    assert_clean(invoke("--db", str(db), "add", "events", str(events)), 0)
    # template.DOMAIN keys may not contain whitespace: such a domain cannot have a template.
    config = invoke("--db", str(db), "config", "set", f"template.{hostile}", "{title}")
    assert_clean(config, 1 if re.search(r"\s", hostile) else 0)
    stats = invoke("--db", str(db), "stats", "--json")
    assert_clean(stats, 0)
    assert json.loads(stats.stdout)["items"] == {hostile: 2}
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT id, domain, title FROM items ORDER BY rowid").fetchall() == [
        (hostile, hostile, hostile),
        ("plain", hostile, "plain"),
    ]
    assert conn.execute("SELECT user_id, item_id, review FROM events ORDER BY id").fetchall() == [
        (hostile, hostile, hostile),
        ("bob", "plain", None),
    ]
    conn.close()
    assert tables(db) >= TABLES
    result = invoke("--db", str(db), "forget", "--yes", hostile)
    assert_clean(result, 0)
    assert count(db, "events") == 1 and count(db, "items") == 2


# -- bugs found by these tests --------------------------------------------------------------

# Fixed: a lone surrogate (a JSON '\ud800' escape) used to reach sqlite3 and raise
# UnicodeEncodeError.


@pytest.mark.parametrize(
    ("kind", "line"),
    [
        ("items", '{"id": "\\ud800", "domain": "d", "title": "t"}'),
        ("items", '{"id": "a", "domain": "d", "title": "tea \\udfff"}'),
        ("items", '{"id": "a", "domain": "d", "title": "t", "brand": "\\ud83d"}'),
        ("events", '{"user": "\\udc80", "item": "a"}'),
        ("events", '{"user": "u", "item": "a", "review": "\\ud800 bad"}'),
    ],
)
def test_lone_surrogates_in_json_are_refused_with_file_and_line(
    tmp_path: Path, kind: str, line: str
) -> None:
    db = tmp_path / "s.db"
    write_jsonl(tmp_path / "ok.jsonl", [{"id": "a", "domain": "d", "title": "t"}])
    assert_clean(invoke("--db", str(db), "add", "items", str(tmp_path / "ok.jsonl")), 0)
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    result = invoke("--db", str(db), "add", kind, str(path))
    assert_clean(result, 1)
    assert f"{path}:1:" in result.stderr


def test_a_field_larger_than_the_csv_limit_is_refused_with_its_line(tmp_path: Path) -> None:
    """csv's field limit is MAX_FIELD_CHARS, as in JSON; one more is an InputError, not a crash."""
    from localrec.store.formats import MAX_FIELD_CHARS

    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("id,domain,title\nok,d,fine\nbig,d,")
        fh.write("x" * (MAX_FIELD_CHARS + 1))
        fh.write("\n")
    db = tmp_path / "big.db"
    result = invoke("--db", str(db), "add", "items", str(path))
    assert_clean(result, 1)
    assert f"{path}:3: a field has more than the 1,048,576 characters" in result.stderr
    assert not db.exists()  # a first import that fails leaves no database behind
