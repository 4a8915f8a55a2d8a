"""Plain-text tables, JSON and CSV for the command line; nothing here knows about models or SQL."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["format_csv", "format_json", "format_table", "human_size"]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4f}"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return str(value).replace("\n", " ").replace("\t", " ")


def format_table(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], max_width: int = 60
) -> str:
    """Left-aligned columns; long cells are cut with an ellipsis."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    cut = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in r] for r in cells]
    widths = [max([len(c)] + [len(r[i]) for r in cut]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cut
    )
    return "\n".join(lines)


def format_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        value = ";".join(map(str, value))
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        # A spreadsheet would run "=HYPERLINK(...)" from an item title: keep it text.
        return "'" + value
    return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def format_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return buffer.getvalue().rstrip("\n")


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


class Progress:
    """A one-line progress display on stderr with rate and ETA; silent when not a terminal."""

    def __init__(self, label: str, unit: str = "items", stream: Any = None, force: bool = False):
        import sys
        import time

        self._time = time.monotonic
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = force or getattr(self.stream, "isatty", lambda: False)()
        self.start = self._time()
        self.last = 0.0
        self.total = 0

    def __call__(self, done: int, total: int) -> None:
        self.total = total
        now = self._time()
        if not self.enabled or (now - self.last < 0.2 and done < total):
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else 0.0
        self.stream.write(
            f"\r{self.label}: {done}/{total} {self.unit}, {rate:.0f} {self.unit}/s, "
            f"ETA {eta:.0f} s   "
        )
        self.stream.flush()
        if done >= total:
            self.stream.write("\n")
