"""The command line's shape: one module per command group, each small; no SQL and no numpy
in it; every command still listed; and a start that imports nothing heavy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from localrec.cli.main import cli
from tests.conftest import REPO

CLI_DIR = REPO / "localrec" / "cli"
STORE_DIR = REPO / "localrec" / "store"
COMMANDS = [
    "add",
    "config",
    "delete",
    "embed",
    "encode",
    "eval",
    "forget",
    "models",
    "pack",
    "recommend",
    "score",
    "serve",
    "similar",
    "stats",
    "threshold",
    "tune",
]


@pytest.mark.parametrize(
    "module",
    sorted([*CLI_DIR.glob("*.py"), *STORE_DIR.glob("*.py")]),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_cli_and_store_module_is_under_500_lines(module: Path) -> None:
    assert len(module.read_text(encoding="utf-8").splitlines()) < 500


@pytest.mark.parametrize(
    ("what", "pattern"),
    [
        ("numpy import", r"^\s*(import numpy|from numpy)"),
        ("numpy call", r"\bnp\."),
        ("sqlite", r"\bsqlite3\b|\.execute(many)?\("),
        ("SQL", r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b"),
    ],
)
def test_the_cli_holds_no_sql_and_no_numpy(what: str, pattern: str) -> None:
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(CLI_DIR.glob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(pattern, line)
    ]
    assert found == [], f"{what} in localrec/cli"


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = re.findall(r"^  ([a-z]+)\s", result.output.split("Commands:")[1], re.M)
    assert listed == COMMANDS
    assert sorted(cli.commands) == COMMANDS


def test_the_entry_point_and_python_m_are_the_same_group() -> None:
    import localrec.__main__

    assert localrec.cli.cli is cli is vars(localrec.__main__)["cli"]
    result = subprocess.run(
        [sys.executable, "-m", "localrec", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert all(re.search(rf"^  {name}\s", result.stdout, re.M) for name in COMMANDS)


def test_starting_the_cli_imports_nothing_heavy() -> None:
    code = (
        "import sys, localrec.cli.main; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'numpy', 'sqlite3', 'sqlite_utils', 'llama_cpp', 'scipy', 'sklearn'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "[]"
