"""One field of an item or event record, checked: ids, times, numbers and text, each
refused with a `RowError` that says why."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from localrec.text import SURROGATE

__all__ = ["RowError", "check_unicode", "identifier", "parse_time", "parse_value", "text_value"]

_MAX_ID = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RowError(ValueError):
    """One record is invalid; the message says why."""


def identifier(record: dict[str, Any], column: str, what: str, flag: str) -> str:
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


def check_unicode(record: dict[str, Any]) -> None:
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


def text_value(record: dict[str, Any], column: str) -> Any:
    """A text column's value: text or a finite number (a list or a NaN is a mistake)."""
    value = record.get(column)
    if isinstance(value, dict | list | bool | bytes):
        raise RowError(f"column {column!r} must be text, got {value!r:.40}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RowError(f"column {column!r} must be text, got {value!r}")
    return value


def parse_time(value: Any) -> float | None:
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
                number = _iso_seconds(text)
            except (ValueError, OverflowError, OSError):
                raise RowError(
                    f"time {text[:40]!r} is neither a number nor an ISO 8601 date"
                ) from None
    if not math.isfinite(number):
        raise RowError(f"time {value!r} is not finite")
    return number


def _iso_seconds(text: str) -> float:
    """An ISO 8601 date as Unix seconds; one without a time zone is UTC, so that a date
    means the same on every machine, with or without its `Z`."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_value(value: Any) -> float | None:
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
