"""Every command is documented in the README or a page of docs/, and every documented
command exists."""

from __future__ import annotations

import re
from pathlib import Path

import click

from localrec.cli.main import cli

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS = "\n".join(
    [README, *(p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").rglob("*.md")))]
)


def commands(group: click.Group, prefix: str = "localrec") -> list[str]:
    out = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            out.extend(commands(command, path))
        else:
            out.append(path)
    return out


def test_every_command_is_in_the_readme_or_the_docs() -> None:
    missing = [c for c in commands(cli) if not re.search(rf"{re.escape(c)}\b", DOCS)]
    assert missing == []


def test_every_command_has_help() -> None:
    for path in commands(cli):
        group: click.Command = cli
        for part in path.split()[1:]:
            assert isinstance(group, click.Group)
            group = group.commands[part]
        assert group.help, f"{path} has no help text"


def test_every_public_name_resolves_and_tune_and_eval_are_public() -> None:
    import localrec

    for name in localrec.__all__:
        assert getattr(localrec, name) is not None, name
    assert {"tune_database", "tune_dataset", "evaluate_database", "evaluate_dataset"} <= set(
        localrec.__all__
    )
