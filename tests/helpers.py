"""Helpers the tests share: the CLI run in-process or as a child process, small databases and
input files, a deterministic two-domain catalogue, and the settings and strategies of the
fuzz tests.

Fixtures are in conftest.py; stand-ins for real things (an encoder, tiny GGUF files) in
fakes.py.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from localrec.cli.main import cli
from tests.conftest import REPO

# -- the CLI --------------------------------------------------------------------------------


def invoke(*args: str, input: str | None = None) -> Result:
    """`localrec ARGS` in this process."""
    return CliRunner().invoke(cli, list(args), input=input)


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    """`localrec ARGS` in this process: exit code, stdout and stderr."""
    result = invoke(*args, input=input)
    return result.exit_code, result.stdout, result.stderr


def assert_clean(result: Result, code: int | None = None) -> None:
    """No uncaught exception and no traceback; optionally the exit code."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(
            f"uncaught {type(result.exception).__name__}: {result.exception}"
        ) from result.exception
    assert "Traceback" not in result.output
    if code is not None:
        assert result.exit_code == code, result.output


def subprocess_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process that imports this checkout's localrec, offline,
    with `home` as its LOCALREC_HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCALREC_DB", "PYTHONPATH")}
    env.update(PYTHONPATH=str(REPO), LOCALREC_HOME=str(home), HF_HUB_OFFLINE="1", **extra)
    return env


def run_localrec(
    args: list[str], home: Path, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`python -m localrec ARGS` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "localrec", *args],
        env=subprocess_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- databases ------------------------------------------------------------------------------

# Every table of a localrec database: none of them may ever go missing.
TABLES = {
    *("items", "events", "vectors", "history_vectors", "config", "state", "adapters"),
    "_sqlite_migrations",
}


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def count(path: Path, table: str, where: str = "", params: tuple[Any, ...] = ()) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table} {where}", params).fetchone()[0])
    finally:
        conn.close()


def remove_db(path: Path) -> None:
    """Delete a database and its -wal and -shm files, those that exist."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def old_schema_db(path: Path) -> Path:
    """A schema-1 database (before the adapters table) holding one item and one review."""
    from sqlite_utils import Database

    from localrec.store.schema import migrations

    conn = sqlite3.connect(path)
    migrations.apply(Database(conn), stop_before="m002_adapters")
    conn.execute("INSERT INTO items (id, domain, title) VALUES ('a', 'books', 'kept')")
    conn.execute(
        "INSERT INTO events (user_id, item_id, action, review) "
        "VALUES ('alice-old-7f3a', 'a', 'review', 'old private review qwerty-99')"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    return path


# -- input files ----------------------------------------------------------------------------


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- a deterministic two-domain catalogue ---------------------------------------------------

THEMES = (
    "green tea",
    "espresso",
    "sourdough",
    "barbecue",
    "vegan",
    "pasta",
    "sushi",
    "tacos",
    "pastry",
    "curry",
    "chocolate",
    "cheese",
)
KITCHEN = ("kettle", "pan", "knife", "jar", "mug")
BOOKS = ("cookbook", "history", "guide", "memoir", "atlas")


def catalogue_items() -> list[dict[str, str]]:
    """2 domains x 60 items: every theme has five kitchen tools and five books."""
    items = []
    for t, theme in enumerate(THEMES):
        for k, tool in enumerate(KITCHEN):
            items.append({"id": f"k{t:02d}{k}", "domain": "kitchen", "title": f"{theme} {tool}"})
        for k, kind in enumerate(BOOKS):
            items.append({"id": f"b{t:02d}{k}", "domain": "books", "title": f"The {theme} {kind}"})
    return items


def catalogue_db(
    path: Path, events: list[dict[str, Any]] | None = None, encoder: Any = None
) -> Path:
    """A database at `path` with the catalogue's items, then `events`, then (given an
    encoder) every item's vector."""
    from localrec.store.db import Store
    from localrec.store.ingest import add_events, add_items
    from localrec.store.item_vectors import encode_items

    with Store(path) as store:
        add_items(store, catalogue_items())
        if events:
            add_events(store, events)
        if encoder is not None:
            encode_items(store, encoder)
    return path


def catalogue_events(users: int = 800, patterns: int = 60, seed: int = 7) -> list[dict[str, Any]]:
    """`users` users with 3-5 events each, alternating domains, each step mostly moving on
    to the next theme (a pattern text similarity cannot see, so `tune` has something to
    learn that beats zero-shot text).

    Users share `patterns` distinct histories, which bounds how many history texts `eval`
    must embed while leaving every user with events (and `tune` with enough pairs)."""
    rng = random.Random(seed)
    sequences = []
    for _ in range(patterns):
        theme = rng.randrange(len(THEMES))
        first = rng.randrange(2)
        steps = []
        for j in range(rng.randint(3, 5)):
            t = (theme + j) % len(THEMES) if rng.random() < 0.8 else rng.randrange(len(THEMES))
            action = rng.choice(("purchase", "rate", "view"))
            value = rng.randint(1, 5) if action == "rate" else None
            steps.append((f"{'kb'[(first + j) % 2]}{t:02d}{rng.randrange(5)}", action, value))
        sequences.append(steps)
    events = []
    for u in range(users):
        for j, (item, action, value) in enumerate(sequences[u % patterns]):
            event: dict[str, Any] = {
                "user": f"u{u:04d}",
                "item": item,
                "action": action,
                "time": 1_700_000_000 + 1000 * u + j,
            }
            if value is not None:
                event["value"] = value
            events.append(event)
    return events


# -- fuzzing --------------------------------------------------------------------------------
# hypothesis runs a fixed, derandomised number of examples per property, and each fuzz test
# prints how many ran (`pytest -s` shows them). LOCALREC_FUZZ_RANDOM=1 draws fresh random
# examples instead, LOCALREC_FUZZ_SCALE=N runs N times as many.

FUZZ_RANDOM = os.environ.get("LOCALREC_FUZZ_RANDOM") == "1"
FUZZ_SCALE = max(1, int(os.environ.get("LOCALREC_FUZZ_SCALE", "1")))
FUZZ_RUNS: Counter[str] = Counter()


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples * FUZZ_SCALE,
        deadline=None,
        derandomize=not FUZZ_RANDOM,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def fuzz_report(name: str, at_least: int) -> None:
    ran = FUZZ_RUNS[name]
    print(f"\nfuzz {name}: {ran} examples")
    assert ran >= at_least * FUZZ_SCALE


SQL_STRINGS = (
    "'; DROP TABLE items;--",
    '"; DROP TABLE events; --',
    "x'); DELETE FROM vectors; --",
    "Robert'); DROP TABLE items;--",
    "1 OR 1=1",
    "' UNION SELECT key, value FROM config --",
    "items",
    "sqlite_master",
    "%",
    "_",
    "?",
    ":name",
    "$1",
    "NULL",
    "\\",
)
# Free text: any Unicode but lone surrogates (their own tests refuse them), with NULs and
# control characters.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
# Longer than an id may be (512) and than a text field is kept (20,000 characters).
HUGE = st.tuples(st.text(min_size=1, max_size=4), st.integers(200, 8_000)).map(
    lambda t: t[0] * t[1]
)
SQLISH = st.sampled_from(SQL_STRINGS)
SCALAR = st.one_of(
    TEXT,
    SQLISH,
    HUGE,
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
JSON_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def count_sql(db: Path | str, sql: str) -> int:
    """The number a `SELECT count(*) ...` gives on the database file."""
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path`, a file or a directory, made unwritable for this process for the block. As
    root, permissions do not stop writes, so it is made immutable (`chattr +i`) instead."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.skip("as root, only `chattr +i` makes a path read-only, and chattr is missing")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(
            f"`chattr +i` failed here, so a read-only path cannot be made as root: {made.stderr}"
        )
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def file_digest(path: Path) -> str:
    """The sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
