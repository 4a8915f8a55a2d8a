"""The documentation: every command is documented on the docs site (README.md and docs/),
every documented command and option exists, the README stays short and starts with its
two commands, its links resolve, its quickstarts run for real, and the version that
`localrec --version` prints is the CHANGELOG's and pyproject.toml's."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import shlex
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import localrec
from localrec.cli.main import cli
from tests.conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
SITE = "\n".join(p.read_text(encoding="utf-8") for p in PAGES)
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```", re.S | re.M)
GLOBAL_OPTIONS = {"--db": 1, "--pack": 1, "--verbose": 0, "--help": 0, "--version": 0}


def commands(group: click.Group, prefix: str = "localrec") -> list[str]:
    out = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            out.extend(commands(command, path))
        else:
            out.append(path)
    return out


def blocks(text: str, language: str) -> list[tuple[str, str]]:
    """(info after the language, body) of each fenced block of `language`."""
    return [
        (m.group(2).strip(), m.group(3)) for m in FENCE.finditer(text) if m.group(1) == language
    ]


def section(text: str, title: str) -> str:
    """The README section under `## {title}`, up to the next `## ` heading."""
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def command_lines(shell: str) -> list[list[str]]:
    """The `localrec ...` commands of a shell block, as argument lists (comments dropped,
    indented continuation lines joined, `a; b` split)."""
    joined = re.sub(r"\n[ \t]+", " ", shell)
    out = []
    for line in joined.splitlines():
        if not re.match(r"([A-Z_]+=\S*\s+)*localrec\b", line):
            continue
        for part in re.split(r";\s*(?=localrec\b)", line):
            words = shlex.split(part, comments=True)
            while re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words.pop(0)  # VAR=value before the command
            out.append(words[1:])
    return out


def resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    """The command `localrec ARGS` names, and the words after its name."""
    command: click.Command = cli
    rest = list(args)
    while rest and isinstance(command, click.Group):
        word = rest.pop(0)
        if word in GLOBAL_OPTIONS:
            rest = rest[GLOBAL_OPTIONS[word] :]
        elif word.startswith("-"):
            raise AssertionError(f"unknown global option {word} in `localrec {' '.join(args)}`")
        else:
            assert word in command.commands, f"no command {word!r} in `localrec {' '.join(args)}`"
            command = command.commands[word]
    return command, rest


# -- commands and options ----------------------------------------------------------------


def test_every_command_is_on_the_docs_site() -> None:
    missing = [c for c in commands(cli) if not re.search(rf"{re.escape(c)}\b", SITE)]
    assert missing == []


def test_every_command_has_help() -> None:
    for path in commands(cli):
        group: click.Command = cli
        for part in path.split()[1:]:
            assert isinstance(group, click.Group)
            group = group.commands[part]
        assert group.help, f"{path} has no help text"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_documented_command_and_option_exists(page: Path) -> None:
    """Every `localrec ...` line of a shell block names a real command, and every long
    option on it is one of that command's (or a global one)."""
    for _, body in blocks(page.read_text(encoding="utf-8"), "bash"):
        for args in command_lines(body):
            command, rest = resolve(args)
            known = {o for p in command.params for o in p.opts if o.startswith("--")}
            known |= {f"--no-{o[2:]}" for p in command.params for o in p.secondary_opts}
            known |= set(GLOBAL_OPTIONS)
            written = set(re.findall(r"--[a-z][a-z0-9-]*", " ".join(rest)))
            assert written <= known, (page.name, args, sorted(written - known))


def test_every_python_block_parses_and_imports_only_public_names() -> None:
    for page in PAGES:
        for _, body in blocks(page.read_text(encoding="utf-8"), "python"):
            tree = ast.parse(body)
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module == "localrec":
                    names = {a.name for a in node.names}
                    assert names <= set(localrec.__all__), (page.name, names)


def test_every_public_name_resolves_and_tune_and_eval_are_public() -> None:
    for name in localrec.__all__:
        assert getattr(localrec, name) is not None, name
    assert {"tune_database", "tune_dataset", "evaluate_database", "evaluate_dataset"} <= set(
        localrec.__all__
    )


# -- the README and the site -------------------------------------------------------------


def test_the_readme_is_short_and_opens_with_its_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    first = blocks(text, "bash")[0][1]
    assert [line.split("#")[0].strip() for line in first.splitlines()] == [
        "scripts/demo",
        "scripts/test",
    ]
    for script in ("demo", "test"):
        assert os.access(REPO / "scripts" / script, os.X_OK)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not re.match(r"[a-z]+:", target):
            assert (page.parent / target).exists(), (page.name, target)


def test_every_docs_page_is_in_the_nav_and_the_nav_names_only_pages() -> None:
    nav = re.findall(r":\s*([\w/.-]+\.md)\s*$", (REPO / "mkdocs.yml").read_text(), re.M)
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages


# -- the version -------------------------------------------------------------------------


def test_the_version_is_the_changelogs_and_pyprojects() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    latest = re.search(r"^## \[(\d+\.\d+\.\d+[^\]]*)\]", changelog, re.M)
    assert latest is not None
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"localrec, version {latest.group(1)}\n"
    assert localrec.__version__ == project["version"] == latest.group(1)


def test_the_license_is_the_apache_license_pyproject_names() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"


# -- the quickstarts, run for real ---------------------------------------------------------


def test_the_cli_quickstart_runs(model_home: Path, tmp_path: Path) -> None:
    text = section(README.read_text(encoding="utf-8"), "Quickstart: the command line")
    for info, body in blocks(text, "csv"):
        name = re.fullmatch(r'title="([^"]+)"', info)
        assert name is not None, info
        (tmp_path / name.group(1)).write_text(body, encoding="utf-8")
    (shell,) = [body for _, body in blocks(text, "bash")]
    outputs = []
    with contextlib.chdir(tmp_path):
        for args in command_lines(shell):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, (args, result.output)
            assert "Traceback" not in result.output
            outputs.append((args, result.stdout))
    assert [a[:3] for a, _ in outputs][:4] == [
        ["models", "pull"],
        ["--db", "app.db", "add"],
        ["--db", "app.db", "add"],
        ["--db", "app.db", "encode"],
    ]
    ann = outputs[4][1]
    ranked = [line.split()[1] for line in ann.splitlines() if re.match(r"\d+\s", line)]
    assert ranked == ["f1", "f3"]  # Interstellar and Arrival: Ann read science fiction
    assert "because" in ann and "Dune" in ann
    ben = json.loads(outputs[5][1])["items"]
    assert [r["item_id"] for r in ben] == ["f2", "f4"]  # the romances
    assert all(-1.0 <= r["score"] <= 1.0 for r in ben)


def test_the_python_quickstart_runs(model_home: Path, tmp_path: Path) -> None:
    text = section(README.read_text(encoding="utf-8"), "Quickstart: Python")
    (code,) = [body for _, body in blocks(text, "python")]
    out = io.StringIO()
    with contextlib.chdir(tmp_path), contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "__quickstart__"})
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["k2", "k1"]  # the tea infuser first
    assert lines[0].startswith("k2 Loose leaf tea infuser ")
    assert lines[0].endswith("['Organic green tea, 100 bags']")
    assert (tmp_path / "shop.db").is_file()
