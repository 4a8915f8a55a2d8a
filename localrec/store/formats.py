"""Streaming readers for CSV, TSV, JSON Lines and JSON arrays, yielding (line, record).

Nothing here loads a whole file: memory stays flat whatever the file size, and every
problem is reported with the file and line it was found on.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, Any

from localrec.errors import InputError

__all__ = ["FORMATS", "MAX_FIELD_CHARS", "BadLine", "detect_format", "read_records"]

FORMATS = ("csv", "tsv", "jsonl", "json")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
_CHUNK = 1 << 16
# The most characters one field may have, in every format: a field larger than this is
# not a catalogue field (csv's own default limit is 128 kB).
MAX_FIELD_CHARS = 1 << 20
csv.field_size_limit(MAX_FIELD_CHARS)

Record = dict[str, Any]


class BadLine:
    """A line that could not be parsed on its own; the caller decides whether to skip it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _RecordError(ValueError):
    """A JSON object that parses but is not a record: a repeated key, an oversized field."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; a key given twice is a mistake, not the last one."""
    record: dict[str, Any] = {}
    for key, value in pairs:
        if key in record:
            raise _RecordError(f"the key {key!r} appears twice in one object; keep one of them")
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            raise _RecordError(_too_long(key, len(value)))
        record[key] = value
    return record


def _too_long(key: str, size: int) -> str:
    return (
        f"the field {key!r} has {size:,} characters, more than the {MAX_FIELD_CHARS:,} a "
        "field may have"
    )


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise InputError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; "
            f"pass --format ({'|'.join(FORMATS)})"
        )
    return found


def read_records(
    path: Path, fmt: str | None = None, stream: IO[bytes] | None = None
) -> Iterator[tuple[int, Record | BadLine]]:
    """Yield (line number, record) pairs from `path`, streaming; from `stream` instead
    when given (stdin), with `path` as its name in messages."""
    path = Path(path)
    if stream is None and not path.is_file():
        raise InputError(f"{path}: no such file")
    kind = detect_format(path, fmt)
    if kind in ("csv", "tsv"):
        return _delimited(path, "," if kind == "csv" else "\t", stream)
    if kind == "jsonl":
        return _json_lines(path, stream)
    return _json_array(path, stream)


def _open(path: Path, stream: IO[bytes] | None) -> AbstractContextManager[IO[bytes]]:
    """The file, or the stream given for it (left open: it is the caller's)."""
    return open(path, "rb") if stream is None else nullcontext(stream)


def _decoded_lines(path: Path, stream: IO[bytes] | None) -> Iterator[str]:
    with _open(path, stream) as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{path}:{number}: invalid UTF-8 (byte {exc.start + 1} of the line); "
                    "save the file as UTF-8"
                ) from None
            yield line.removeprefix("\ufeff") if number == 1 else line


def _delimited(
    path: Path, delimiter: str, stream: IO[bytes] | None
) -> Iterator[tuple[int, Record | BadLine]]:
    reader = csv.reader(_decoded_lines(path, stream), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputError(f"{path}:1: malformed header: {exc}") from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header) or any(not h for h in header):
        raise InputError(f"{path}:1: the header has empty or repeated column names: {header}")
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise InputError(
                    f"{path}:{reader.line_num}: a field has more than the "
                    f"{MAX_FIELD_CHARS:,} characters a field may have"
                ) from None
            raise InputError(f"{path}:{reader.line_num}: malformed row: {exc}") from None
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            reason = f"ragged row: {len(row)} fields where the header has {len(header)}"
            yield reader.line_num, BadLine(reason)
            continue
        yield reader.line_num, dict(zip(header, row, strict=True))


def _json_lines(path: Path, stream: IO[bytes] | None) -> Iterator[tuple[int, Record | BadLine]]:
    with _open(path, stream) as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, BadLine(f"invalid UTF-8 (byte {exc.start + 1} of the line)")
                continue
            if not line.strip():
                continue
            try:
                record = _DECODER.decode(line)
            except json.JSONDecodeError as exc:
                yield number, BadLine(f"invalid JSON ({exc.msg} at column {exc.colno}); truncated?")
                continue
            except _RecordError as exc:
                yield number, BadLine(str(exc))
                continue
            except RecursionError:
                yield number, BadLine("JSON nested too deeply")
                continue
            if not isinstance(record, dict):
                yield number, BadLine(f"expected a JSON object, got {type(record).__name__}")
                continue
            yield number, record


def _json_array(path: Path, stream: IO[bytes] | None) -> Iterator[tuple[int, Record | BadLine]]:
    """Elements of a top-level JSON array, parsed one at a time from a sliding buffer."""
    decoder = _DECODER
    utf8 = codecs.getincrementaldecoder("utf-8")()
    with _open(path, stream) as fh:
        buffer = ""
        pos = 0
        line = 1  # line number at buffer[0]
        eof = False

        def more() -> bool:
            nonlocal buffer, pos, line, eof
            if eof:
                return False
            chunk = fh.read(_CHUNK)
            try:
                text = utf8.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                raise InputError(
                    f"{path}:{line + buffer.count(chr(10), 0, pos)}: invalid UTF-8; "
                    "save the file as UTF-8"
                ) from None
            line += buffer.count("\n", 0, pos)
            buffer = buffer[pos:] + text
            pos = 0
            eof = not chunk
            return bool(chunk)

        def skip_ws() -> None:
            nonlocal pos
            while True:
                while pos < len(buffer) and buffer[pos] in " \t\r\n":
                    pos += 1
                if pos < len(buffer) or not more():
                    return

        def here() -> int:
            return line + buffer.count("\n", 0, pos)

        skip_ws()
        if pos >= len(buffer):
            return
        if buffer[pos] != "[":
            raise InputError(f"{path}:{here()}: expected a JSON array of objects")
        pos += 1
        first = True
        while True:
            skip_ws()
            if pos >= len(buffer):
                raise InputError(f"{path}:{here()}: the JSON array is not closed; truncated?")
            if buffer[pos] == "]":
                return
            if not first:
                if buffer[pos] != ",":
                    raise InputError(f"{path}:{here()}: expected ',' between array elements")
                pos += 1
                skip_ws()
            first = False
            start_line = here()
            while True:
                try:
                    record, end = decoder.raw_decode(buffer, pos)
                    break
                except json.JSONDecodeError as exc:
                    if not more():
                        raise InputError(
                            f"{path}:{start_line}: invalid JSON ({exc.msg}); truncated?"
                        ) from None
                except RecursionError:
                    raise InputError(f"{path}:{start_line}: JSON nested too deeply") from None
                except _RecordError as exc:
                    raise InputError(f"{path}:{start_line}: {exc}") from None
            if not isinstance(record, dict):
                raise InputError(
                    f"{path}:{start_line}: expected a JSON object, got {type(record).__name__}"
                )
            pos = end
            yield start_line, record
