"""Validate item and event records and write them to the store, one transaction per source.

A bad row stops the whole source and leaves the database exactly as it was, unless
`skip_invalid` is set: then the good rows are stored and the bad ones reported.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from localrec.errors import InputError, RowRejected
from localrec.store.db import EventRow, ItemRow, Store
from localrec.store.formats import BadLine, read_records
from localrec.text import SURROGATE, clean_text

__all__ = [
    "EventColumns",
    "IngestReport",
    "ItemColumns",
    "add_events",
    "add_events_file",
    "add_items",
    "add_items_file",
]

_CHUNK = 2000
_MAX_ID = 512
_ACTION = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_REPORTED = 20
_Row = TypeVar("_Row", ItemRow, EventRow)


@dataclass(frozen=True)
class ItemColumns:
    """Which record fields hold the item's id, domain and text (the first text is the title)."""

    id: str = "id"
    domain: str | None = "domain"
    set_domain: str | None = None
    text: tuple[str, ...] = ("title",)


@dataclass(frozen=True)
class EventColumns:
    """Which record fields hold an event's user, item, action, value, time and review.

    An event without a time (no time column, or an empty value) gets the time it is
    stored at: it comes after the user's earlier events, in the order of its file.
    """

    user: str = "user"
    item: str = "item"
    action: str | None = "action"
    set_action: str | None = None
    value: str | None = "value"
    time: str | None = "time"
    review: str | None = "review"


@dataclass
class IngestReport:
    """What one ingest stored, and the rows it skipped (with --skip-invalid)."""

    source: str
    stored: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)


class RowError(ValueError):
    """One record is invalid; the message says why."""


def _identifier(record: dict[str, Any], column: str, what: str, flag: str) -> str:
    if column not in record:
        present = ", ".join(map(str, record)) or "none"
        raise RowError(
            f"missing required column {column!r} (columns: {present}); "
            f"name the {what} column with {flag}"
        )
    value = record[column]
    if value is None or isinstance(value, dict | list | bool | float | bytes):
        # A float id would not match the same id written as an integer or a string.
        raise RowError(f"{what} must be a string or an integer, got {value!r:.40}")
    text = str(value).strip()
    if not text:
        raise RowError(f"empty {what}")
    if len(text) > _MAX_ID:
        raise RowError(f"{what} is longer than {_MAX_ID} characters")
    if _CONTROL.search(text):
        raise RowError(f"{what} {text[:40]!r} contains control characters")
    return text


def _check_unicode(record: dict[str, Any]) -> None:
    """Refuse lone surrogates anywhere in a record (keys, values, nested), iteratively."""
    stack: list[Any] = [record]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if SURROGATE.search(value):
                raise RowError(
                    f"{value[:40]!r} is not valid Unicode (an unpaired surrogate, such as a "
                    "JSON \\ud800 escape)"
                )
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def item_from_record(record: dict[str, Any], columns: ItemColumns) -> ItemRow:
    item_id = _identifier(record, columns.id, "item id", "--id")
    if columns.set_domain is not None:
        domain = columns.set_domain
    else:
        assert columns.domain is not None
        domain = _identifier(record, columns.domain, "domain", "--domain or --set-domain")
    title_column = columns.text[0]
    if title_column not in record:
        raise RowError(
            f"missing required column {title_column!r} "
            f"(columns: {', '.join(map(str, record))}); name the text column with --text"
        )
    title = clean_text(_text_value(record, title_column))
    if not title:
        raise RowError(f"empty title (column {title_column!r})")
    fields = {c: text for c in columns.text[1:] if (text := clean_text(_text_value(record, c)))}
    used = {columns.id, columns.domain, *columns.text}
    attributes = {k: v for k, v in record.items() if k not in used and v not in (None, "")}
    return ItemRow(id=item_id, domain=domain, title=title, fields=fields, attributes=attributes)


def _text_value(record: dict[str, Any], column: str) -> Any:
    """A text column's value: text or a finite number (a list or a NaN is a mistake)."""
    value = record.get(column)
    if isinstance(value, dict | list | bool | bytes):
        raise RowError(f"column {column!r} must be text, got {value!r:.40}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RowError(f"column {column!r} must be text, got {value!r}")
    return value


def _parse_time(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RowError(f"time must be a number or an ISO 8601 date, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            try:
                number = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise RowError(
                    f"time {text[:40]!r} is neither a number nor an ISO 8601 date"
                ) from None
    if not math.isfinite(number):
        raise RowError(f"time {value!r} is not finite")
    return number


def _parse_value(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RowError(f"value must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowError(f"value {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(number):
        raise RowError(f"value {value!r} is not finite")
    return number


def event_from_record(
    record: dict[str, Any], columns: EventColumns, now: float | None = None
) -> EventRow:
    """One event from one record; `now` is the time of an event that gives none."""
    user = _identifier(record, columns.user, "user", "--user")
    item = _identifier(record, columns.item, "item", "--item")
    if columns.set_action is not None:
        action = columns.set_action.strip().lower()
    elif columns.action is not None and record.get(columns.action) not in (None, ""):
        action = str(record[columns.action]).strip().lower()
    else:
        action = "purchase"
    if not _ACTION.match(action):
        raise RowError(f"action {action[:40]!r} must be a short lowercase word such as purchase")
    value = _parse_value(record.get(columns.value)) if columns.value else None
    ts = _parse_time(record.get(columns.time)) if columns.time else None
    if ts is None:
        ts = now
    review = clean_text(record.get(columns.review)) if columns.review else ""
    return EventRow(user, item, action, value, ts, review or None)


def _reject(report: IngestReport, skip_invalid: bool, line: int, reason: str) -> None:
    """Record a bad row with --skip-invalid; otherwise abort the whole source."""
    if not skip_invalid:
        raise RowRejected(
            f"{report.source}:{line}: {reason}; nothing from {report.source} was stored",
            source=report.source,
            line=line,
            reason=reason,
        )
    report.skipped.append((line, reason))


def _valid_rows(
    records: Iterable[Any],
    convert: Callable[[dict[str, Any], int], _Row],
    report: IngestReport,
    skip_invalid: bool,
) -> Iterator[tuple[int, _Row]]:
    """(line, row) for every record that converts; bad ones go through `_reject`."""
    for line, record in _numbered(records):
        try:
            if isinstance(record, BadLine):
                raise RowError(record.reason)
            if not isinstance(record, dict):
                raise RowError(f"expected an object, got {type(record).__name__}")
            _check_unicode(record)
            row = convert(record, line)
        except RowError as exc:
            _reject(report, skip_invalid, line, str(exc))
            continue
        yield line, row


def _chunks(rows: Iterator[tuple[int, _Row]]) -> Iterator[list[tuple[int, _Row]]]:
    batch: list[tuple[int, _Row]] = []
    for entry in rows:
        batch.append(entry)
        if len(batch) >= _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def add_items(
    store: Store,
    records: Iterable[Any],
    columns: ItemColumns | None = None,
    *,
    source: str = "<items>",
    skip_invalid: bool = False,
    taken: Container[str] | None = None,
) -> IngestReport:
    """Insert or update items from dicts (or (line, dict) pairs), in one transaction.

    `taken` holds ids that belong to someone else (a pack's catalogue, beside which a
    device adds items of its own): an item with one of them is refused."""
    cols = columns or ItemColumns()
    if cols.set_domain is not None:
        try:
            _identifier({"domain": cols.set_domain}, "domain", "domain", "--set-domain")
        except RowError as exc:
            raise InputError(f"--set-domain {cols.set_domain!r}: {exc}") from None
    report = IngestReport(source)
    seen: dict[str, int] = {}
    columns_seen: set[str] = set()

    def convert(record: dict[str, Any], line: int) -> ItemRow:
        columns_seen.update(record)
        row = item_from_record(record, cols)
        if taken is not None and row.id in taken:
            raise RowError(
                f"item id {row.id!r} is the pack's; an item of this device needs an id of its own"
            )
        if row.id in seen:
            raise RowError(f"duplicate item id {row.id!r} (first on line {seen[row.id]})")
        seen[row.id] = line
        return row

    with store.write() as conn:
        for batch in _chunks(_valid_rows(records, convert, report, skip_invalid)):
            store.upsert_items(conn, [row for _, row in batch])
            report.stored += len(batch)
        absent = [c for c in cols.text[1:] if c not in columns_seen]
        if absent and report.stored:
            # Raised inside the transaction, so nothing of the file is kept.
            raise InputError(
                f"{source}: no row has the text column(s) {', '.join(map(repr, absent))} "
                f"(columns: {', '.join(sorted(map(str, columns_seen)))}); check the --text "
                f"names; nothing from {source} was stored"
            )
    return report


def add_events(
    store: Store,
    records: Iterable[Any],
    columns: EventColumns | None = None,
    *,
    source: str = "<events>",
    skip_invalid: bool = False,
    known_items: Container[str] | None = None,
) -> IngestReport:
    """Append events from dicts (or (line, dict) pairs), in one transaction.

    An event without a time gets the time of this call, the same for all of them, so
    they keep their order (by id) and come after every earlier event. Every event's
    item must be in the catalogue or in `known_items` (the ids of items kept outside
    this database, such as a pack's catalogue).
    """
    cols = columns or EventColumns()
    if cols.set_action is not None and not _ACTION.match(cols.set_action.strip().lower()):
        raise InputError(
            f"--set-action {cols.set_action[:40]!r}: an action is a short lowercase word "
            "such as purchase, rate or view"
        )
    report = IngestReport(source)
    now = time.time()
    outside: Container[str] = known_items if known_items is not None else ()
    with store.write() as conn:
        rows = _valid_rows(
            records, lambda r, _: event_from_record(r, cols, now), report, skip_invalid
        )
        for batch in _chunks(rows):
            missing = store.missing_items(
                conn, (row.item_id for _, row in batch if row.item_id not in outside)
            )
            good = []
            for line, row in batch:
                if row.item_id in missing:
                    reason = f"unknown item {row.item_id!r}; add it with `localrec add items` first"
                    _reject(report, skip_invalid, line, reason)
                else:
                    good.append(row)
            store.insert_events(conn, good)
            report.stored += len(good)
    report.skipped.sort()
    return report


def _numbered(records: Iterable[Any]) -> Iterator[tuple[int, Any]]:
    for index, entry in enumerate(records, start=1):
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], int):
            yield entry
        else:
            yield index, entry


def add_items_file(
    store: Store,
    path: Path,
    columns: ItemColumns | None = None,
    *,
    fmt: str | None = None,
    skip_invalid: bool = False,
    taken: Container[str] | None = None,
) -> IngestReport:
    return add_items(
        store,
        read_records(path, fmt),
        columns,
        source=str(path),
        skip_invalid=skip_invalid,
        taken=taken,
    )


def add_events_file(
    store: Store,
    path: Path,
    columns: EventColumns | None = None,
    *,
    fmt: str | None = None,
    skip_invalid: bool = False,
    known_items: Container[str] | None = None,
) -> IngestReport:
    return add_events(
        store,
        read_records(path, fmt),
        columns,
        source=str(path),
        skip_invalid=skip_invalid,
        known_items=known_items,
    )
