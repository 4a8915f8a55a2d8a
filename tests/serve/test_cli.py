"""`localrec serve` refuses in one line what it cannot do, before it opens the database; the
rest of the CLI neither needs nor imports the serve extra."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import assert_clean, invoke, subprocess_env


def one_line(args: list[str], tmp_path: Path) -> str:
    """The error `localrec --db me.db serve ARGS` ends with (1: refused, 2: a usage error)."""
    result = invoke("--db", str(tmp_path / "me.db"), "serve", *args)
    assert_clean(result)
    assert result.exit_code in (1, 2) and result.stdout == ""
    assert not (tmp_path / "me.db").exists()  # refused before the database was created
    return result.stderr.strip().splitlines()[-1]


def test_without_the_extra_it_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("localrec.serve.server.find_spec", lambda name: None)
    line = one_line([], tmp_path)
    assert line == (
        "Error: `localrec serve` needs fastapi and uvicorn: pip install 'localrec[serve]'"
    )


def test_the_rest_of_the_cli_does_not_import_it(tmp_path: Path) -> None:
    extra = ("fastapi", "uvicorn", "pydantic", "starlette")
    code = (
        "import sys; from localrec.cli.main import cli; "
        f"print(sorted(m for m in {extra!r} if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--cors", "*"], "--cors '*': give one web origin such as http://localhost:3000"),
        (["--cors", "http://x.example/path"], "--cors 'http://x.example/path': give one web"),
        (["--cors", "null"], "--cors 'null': give one web origin"),
        (["--token", "short"], "--token must be 16 to 256 characters"),
        (["--port", "70000"], "--port 70000 is not a port number (0 to 65535)"),
        (["--workers", "0"], "--workers 0: give 1 to 64 processes"),
        (["--workers", "65"], "--workers 65: give 1 to 64 processes"),
    ],
)
def test_bad_options_in_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    assert one_line(args, tmp_path).startswith(f"Error: {expected}")


def test_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = one_line(["--port", str(port)], tmp_path)
    assert line.startswith(f"Error: cannot listen on 127.0.0.1 port {port} (")
    assert line.endswith("another process may use it: choose another with --port")


def test_db_given_twice(tmp_path: Path) -> None:
    line = one_line(["--db", str(tmp_path / "other.db")], tmp_path)
    assert line.startswith("Error: --db is given twice")


def in_child(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """`python -m localrec ARGS` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "localrec", *args],
        env=subprocess_env(home),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_an_address_of_another_machine(tmp_path: Path) -> None:
    """In a child process: here, every address but 127.0.0.1 is refused before a bind."""
    home = tmp_path / "home"
    shown = in_child(["--db", str(tmp_path / "me.db"), "serve", "--host", "192.0.2.1"], home)
    assert shown.returncode == 1 and shown.stdout == ""
    assert shown.stderr.startswith("Error: cannot listen on 192.0.2.1 port 8765 (")
    assert len(shown.stderr.strip().splitlines()) == 1
    assert (home / "serve" / "token").exists()  # off loopback, a token is made first
    assert not (tmp_path / "me.db").exists()


def test_a_missing_pack_in_one_line(tmp_path: Path) -> None:
    line = one_line(["--pack", str(tmp_path / "nope.lrpack"), "--port", "0"], tmp_path)
    assert "nope.lrpack" in line and line.startswith("Error: ")


def test_a_worker_that_cannot_start_stops_the_server_in_one_line(tmp_path: Path) -> None:
    """The pack is read in each worker process: its error reaches the parent, which says it
    in one line, stops the workers already started and exits 1."""
    args = ["--db", str(tmp_path / "me.db"), "serve", "--port", "0", "--workers", "2"]
    shown = in_child([*args, "--pack", str(tmp_path / "nope.lrpack")], tmp_path / "home")
    assert shown.returncode == 1 and shown.stdout == ""
    assert "Traceback" not in shown.stderr
    lines = shown.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "nope.lrpack" in lines[0]
