"""Validate item and event records and write them to the store, one transaction per source.

A bad row stops the whole source and leaves the database exactly as it was, unless
`skip_invalid` is set: then the good rows are stored and the bad ones reported.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from localrec.errors import InputError, RowRejected
from localrec.paths import as_path
from localrec.store.config import action_weights
from localrec.store.db import EventRow, ItemRow, Store
from localrec.store.formats import BadLine, read_records
from localrec.store.ingest_checks import (
    check_call,
    column_names,
    missing_columns,
    named_columns,
    unembedded_columns,
    unknown_actions,
    value_name,
)
from localrec.store.item_vectors import templates
from localrec.store.values import (
    RowError,
    check_unicode,
    identifier,
    parse_time,
    parse_value,
    text_value,
)
from localrec.text import clean_text
from localrec.weighting import ACTION_WORD

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
MAX_REPORTED = 20
_Row = TypeVar("_Row", ItemRow, EventRow)


@dataclass(frozen=True)
class ItemColumns:
    """Which record fields hold the item's id, domain and text (the first text is the title).

    Attributes:
        id: The field with the item's id.
        domain: The field with the item's domain (None with `set_domain`).
        set_domain: Put every item in this domain instead of reading a field.
        text: The fields embedded, in order: the first is the title, the others are
            written `Key: value` after it (unless the domain has a template).

    Other columns are stored as the item's attributes, which a domain's template may name.
    """

    id: str = "id"
    domain: str | None = "domain"
    set_domain: str | None = None
    text: tuple[str, ...] = ("title",)

    def __post_init__(self) -> None:
        column_names(self, ("id",), ("domain",))
        value_name(self, "set_domain")
        if isinstance(self.text, str) or not isinstance(self.text, tuple | list) or not self.text:
            raise InputError(
                f"ItemColumns.text is a tuple of column names, the title's first, such as "
                f"('title', 'author'), got {self.text!r:.60}"
            )
        column_names(self, (), (), *self.text)


@dataclass(frozen=True)
class EventColumns:
    """Which record fields hold an event's user, item, action, value, time and review.

    An event without a time (no time column, or an empty value) gets the time it is
    stored at: it comes after the user's earlier events, in the order of its file.

    Attributes:
        user: The field with the user's id.
        item: The field with the item's id.
        action: The field with the action (purchase, rate, review, view, ...).
        set_action: Give every event this action instead of reading a field.
        value: The field with a rating (a `rate` on a 0-5 scale) or a weight.
        time: The field with the time: Unix seconds or ISO 8601.
        review: The field with a review's text.
    """

    user: str = "user"
    item: str = "item"
    action: str | None = "action"
    set_action: str | None = None
    value: str | None = "value"
    time: str | None = "time"
    review: str | None = "review"

    def __post_init__(self) -> None:
        column_names(self, ("user", "item"), ("action", "value", "time", "review"))
        value_name(self, "set_action")


@dataclass
class IngestReport:
    """What one ingest stored, the rows it skipped (with --skip-invalid), and notes on
    what was stored but may not do what was meant.

    Attributes:
        source: The file (or the name given as `source`) the rows came from.
        stored: How many rows were stored.
        skipped: (line, reason) of each row skipped.
        notes: Columns stored but not embedded, action words localrec has no weight for.
    """

    source: str
    stored: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)


def item_from_record(record: dict[str, Any], columns: ItemColumns) -> ItemRow:
    item_id = identifier(record, columns.id, "item id", "--id")
    if columns.set_domain is not None:
        domain = columns.set_domain
    else:
        assert columns.domain is not None
        domain = identifier(record, columns.domain, "domain", "--domain or --set-domain")
    title_column = columns.text[0]
    if title_column not in record:
        raise RowError(
            f"missing required column {title_column!r} "
            f"(columns: {', '.join(map(str, record))}); name the text column with --text"
        )
    title = clean_text(text_value(record, title_column))
    if not title:
        raise RowError(f"empty title (column {title_column!r})")
    fields = {c: text for c in columns.text[1:] if (text := clean_text(text_value(record, c)))}
    used = {columns.id, columns.domain, *columns.text}
    attributes = {k: v for k, v in record.items() if k not in used and v not in (None, "")}
    return ItemRow(id=item_id, domain=domain, title=title, fields=fields, attributes=attributes)


def event_from_record(
    record: dict[str, Any], columns: EventColumns, now: float | None = None
) -> EventRow:
    """One event from one record; `now` is the time of an event that gives none."""
    user = identifier(record, columns.user, "user", "--user")
    item = identifier(record, columns.item, "item", "--item")
    if columns.set_action is not None:
        action = columns.set_action.strip().lower()
    elif columns.action is not None and record.get(columns.action) not in (None, ""):
        action = str(record[columns.action]).strip().lower()
    else:
        action = "purchase"
    if not ACTION_WORD.match(action):
        raise RowError(f"action {action[:40]!r} must be a short lowercase word such as purchase")
    value = parse_value(record.get(columns.value)) if columns.value else None
    ts = parse_time(record.get(columns.time)) if columns.time else None
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
            check_unicode(record)
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

    Args:
        store: The database to write to.
        records: The items: dicts, or (line number, dict) pairs for messages that name
            the line.
        columns: Which fields hold what (default: `id`, `domain`, `title`).
        source: The name the messages give the records (a file name).
        skip_invalid: Store the good rows and list the bad ones in the report; by default
            a bad row stores nothing.
        taken: Ids that belong to someone else (a pack's catalogue, beside which a device
            adds items of its own): an item with one of them is refused.

    The report's notes name the columns that were stored but are not embedded.

    Raises:
        InputError: A bad row (without `skip_invalid`), naming its line and the fix.
    """
    check_call(store, records, columns, ItemColumns, taken)
    cols = columns or ItemColumns()
    if cols.set_domain is not None:
        try:
            identifier({"domain": cols.set_domain}, "domain", "domain", "--set-domain")
        except RowError as exc:
            raise InputError(f"--set-domain {cols.set_domain!r}: {exc}") from None
    report = IngestReport(source)
    seen: dict[str, int] = {}
    columns_seen: set[str] = set()
    keys_by_domain: dict[str, set[str]] = {}

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
        keys_by_domain.setdefault(row.domain, set()).update(row.fields, row.attributes)
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
    report.notes = unembedded_columns(keys_by_domain, cols.text, templates(store))
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
    they keep their order (by id) and come after every earlier event.

    Args:
        store: The database to write to.
        records: The events: dicts, or (line number, dict) pairs.
        columns: Which fields hold what (default: `user`, `item`, `action`, `value`,
            `time`, `review`).
        source: The name the messages give the records (a file name).
        skip_invalid: Store the good rows and list the bad ones in the report.
        known_items: Ids of items kept outside this database (a pack's catalogue); every
            event's item must be in the catalogue or here.

    A column named other than by default (`EventColumns(time="when")`, `--time when`) must
    be in the records. The report's notes name the action words localrec has no weight for.

    Raises:
        InputError: A bad row (without `skip_invalid`), naming its line and the fix.
    """
    check_call(store, records, columns, EventColumns, known_items)
    cols = columns or EventColumns()
    if cols.set_action is not None and not ACTION_WORD.match(cols.set_action.strip().lower()):
        raise InputError(
            f"--set-action {cols.set_action[:40]!r}: an action is a short lowercase word "
            "such as purchase, rate or view"
        )
    named = named_columns(cols, EventColumns())
    report = IngestReport(source)
    now = time.time()
    outside: Container[str] = known_items if known_items is not None else ()
    columns_seen: set[str] = set()
    actions: Counter[str] = Counter()

    def convert(record: dict[str, Any], _: int) -> EventRow:
        columns_seen.update(record)
        return event_from_record(record, cols, now)

    with store.write() as conn:
        rows = _valid_rows(records, convert, report, skip_invalid)
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
            actions.update(row.action for row in good)
            report.stored += len(good)
        if columns_seen:
            # Raised inside the transaction, so nothing of the file is kept.
            missing_columns(source, named, {str(c) for c in columns_seen})
    report.skipped.sort()
    report.notes = unknown_actions(actions, action_weights(store))
    return report


def _numbered(records: Iterable[Any]) -> Iterator[tuple[int, Any]]:
    for index, entry in enumerate(records, start=1):
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], int):
            yield entry
        else:
            yield index, entry


STDIN = "-"


def _source(path: Path | str) -> tuple[Path, str, IO[bytes] | None]:
    """The path, its name in messages, and the stream to read when it is "-" (stdin)."""
    if str(path) == STDIN:
        return Path("<stdin>"), "<stdin>", sys.stdin.buffer
    checked = as_path(path, "the file")
    return checked, str(checked), None


def add_items_file(
    store: Store,
    path: Path | str,
    columns: ItemColumns | None = None,
    *,
    fmt: str | None = None,
    skip_invalid: bool = False,
    taken: Container[str] | None = None,
) -> IngestReport:
    """`add_items` from a CSV, TSV, JSON Lines or JSON array file; "-" reads stdin (then
    `fmt` is needed)."""
    path, source, stream = _source(path)
    return add_items(
        store,
        read_records(path, fmt, stream),
        columns,
        source=source,
        skip_invalid=skip_invalid,
        taken=taken,
    )


def add_events_file(
    store: Store,
    path: Path | str,
    columns: EventColumns | None = None,
    *,
    fmt: str | None = None,
    skip_invalid: bool = False,
    known_items: Container[str] | None = None,
) -> IngestReport:
    """`add_events` from a CSV, TSV, JSON Lines or JSON array file; "-" reads stdin (then
    `fmt` is needed)."""
    path, source, stream = _source(path)
    return add_events(
        store,
        read_records(path, fmt, stream),
        columns,
        source=source,
        skip_invalid=skip_invalid,
        known_items=known_items,
    )
