"""What the CLI tests share: running a command, and counting rows in a database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from localrec.cli.main import cli


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `localrec ARGS`."""
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def count(db: Path | str, sql: str) -> int:
    """The number a `SELECT count(*) ...` gives on the database file."""
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()
