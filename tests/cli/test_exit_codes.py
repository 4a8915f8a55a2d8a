"""Every exit code of the CLI is defined once (localrec.cli.exit_codes) and documented in
docs/cli.md, and the codes do not clash with click's."""

from __future__ import annotations

import re

from localrec.cli import exit_codes
from tests.conftest import REPO

DOC = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")


def test_every_exit_code_is_in_the_documentation_table() -> None:
    table = {int(code) for code in re.findall(r"^\| (\d+) \|", DOC, re.M)}
    assert table == set(exit_codes.EXIT_CODES)


def test_the_codes_are_distinct_and_keep_clicks_own() -> None:
    named = [
        exit_codes.OK,
        exit_codes.ERROR,
        exit_codes.USAGE,
        exit_codes.UNKNOWN_USER,
        exit_codes.NO_PERSONAL_LIST,
    ]
    assert len(set(named)) == len(named) == len(exit_codes.EXIT_CODES)
    assert (exit_codes.OK, exit_codes.ERROR, exit_codes.USAGE) == (0, 1, 2)  # click's
