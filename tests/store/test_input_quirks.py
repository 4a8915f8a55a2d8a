"""Quirks of input files, each now refused or made consistent: a key given twice in JSON,
one field limit in every format, ISO dates with and without a time zone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localrec.store.formats import MAX_FIELD_CHARS
from tests.helpers import assert_clean, count, count_sql, invoke

BIG = "y" * (MAX_FIELD_CHARS + 1)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "dup.jsonl",
            '{"id": "a", "domain": "k", "title": "t"}\n'
            '{"id": "b", "domain": "k", "title": "t", "title": "u"}\n',
            "dup.jsonl:2: the key 'title' appears twice in one object",
        ),
        (
            "dup.json",
            '[{"id": "a", "domain": "k", "title": "t"},\n'
            ' {"id": "b", "domain": "k", "title": "t", "fields": {"x": 1, "x": 2}}]',
            "dup.json:2: the key 'x' appears twice in one object",
        ),
        (
            "big.csv",
            f"id,domain,title\na,k,t\nb,k,{BIG}\n",
            f"big.csv:3: a field has more than the {MAX_FIELD_CHARS:,} characters",
        ),
        (
            "big.jsonl",
            json.dumps({"id": "b", "domain": "k", "title": BIG}) + "\n",
            f"big.jsonl:1: the field 'title' has {MAX_FIELD_CHARS + 1:,} characters, more "
            f"than the {MAX_FIELD_CHARS:,}",
        ),
        (
            "big.json",
            json.dumps([{"id": "a", "domain": "k", "title": "t"}, {"id": "b", "title": BIG}]),
            f"big.json:1: the field 'title' has {MAX_FIELD_CHARS + 1:,} characters",
        ),
    ],
)
def test_a_repeated_key_or_an_oversized_field_is_refused(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    db = tmp_path / "app.db"
    result = invoke("--db", str(db), "add", "items", str(path))
    assert_clean(result, 1)
    assert message in result.stderr
    assert not db.exists() or count(db, "items") == 0


def test_iso_dates_mean_the_same_with_or_without_a_time_zone(tmp_path: Path) -> None:
    """A date without a zone is UTC; year 1 parses with and without its `Z`."""
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": "a", "domain": "k", "title": "t"}\n', encoding="utf-8")
    times = [
        "0001-01-01T00:00:00",
        "0001-01-01T00:00:00Z",
        "2024-05-01T12:00:00",
        "2024-05-01T12:00:00Z",
        "2024-05-01T14:00:00+02:00",
        "2024-05-01",
    ]
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(json.dumps({"user": "u", "item": "a", "time": t}) + "\n" for t in times),
        encoding="utf-8",
    )
    db = tmp_path / "app.db"
    assert_clean(invoke("--db", str(db), "add", "items", str(items)), 0)
    assert_clean(invoke("--db", str(db), "add", "events", str(events)), 0)
    stored = [
        count_sql(db, f"SELECT CAST(ts AS INTEGER) FROM events WHERE id = {i}") for i in range(1, 7)
    ]
    assert stored == [-62135596800, -62135596800, 1714564800, 1714564800, 1714564800, 1714521600]
