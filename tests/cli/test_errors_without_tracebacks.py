"""Random command lines never end in an uncaught exception or a traceback: every exit code is
one of localrec.cli.exit_codes (0; 1, a LocalrecError said in one line; 2, a usage error; 3
and 4, "nothing to show"), and no database loses a table."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from localrec.cli.exit_codes import EXIT_CODES
from localrec.cli.main import cli
from localrec.store.db import Store
from localrec.store.ingest import (
    add_events,
    add_items,
)
from localrec.store.item_vectors import encode_items
from tests.conftest import DEFAULT_MODEL
from tests.fakes import FakeEncoder
from tests.helpers import (
    FUZZ_RUNS,
    SQLISH,
    TABLES,
    assert_clean,
    catalogue_events,
    catalogue_items,
    fuzz,
    fuzz_report,
    invoke,
    remove_db,
    tables,
    write_csv,
    write_jsonl,
)

COMMANDS = (
    (),
    ("stats",),
    ("stats", "--json"),
    ("recommend",),
    ("recommend", "u1", "--domain"),
    ("score",),
    ("similar",),
    ("forget",),
    ("encode",),
    ("embed",),
    ("add", "items"),
    ("add", "events"),
    ("delete", "items"),
    ("config", "set"),
    ("config", "get"),
    ("config", "unset"),
    ("config", "list"),
    ("models", "list"),
    ("models", "info"),
    ("models", "pull"),
    ("models", "add"),
    ("models", "convert"),
    ("threshold", "suggest"),
    ("eval",),
    ("tune",),
)
OPTIONS = (
    "--json",
    "--csv",
    "-k",
    "--threshold",
    "--domain",
    "--from",
    "--user-vector",
    "--model",
    "--explain",
    "--include-seen",
    "--no-fallback",
    "--no-adapter",
    "--lang",
    "--history",
    "--yes",
    "--force",
    "--chunk-size",
    "--format",
    "--id",
    "--set-domain",
    "--text",
    "--skip-invalid",
    "--user",
    "--item",
    "--set-action",
    "--negatives",
    "--full",
    "--seed",
    "--setting",
    "--epochs",
    "--dim",
    "--max-users",
    "--query",
    "--name",
    "--max-tokens",
    "--type",
    "--file",
    "--help",
    "--version",
)
VALUES = (
    "0",
    "-1",
    "3",
    "1e309",
    "nan",
    "-0.5",
    "books",
    "kitchen",
    "k0",
    "b1",
    "u1",
    "item-mean",
    "max-sim",
    "hybrid",
    "zh",
    "csv",
    "jsonl",
    "template.books",
    "{title} by {brand}",
    "action.read",
    "0.8",
    "-",
    "{title",
    "..",
    "../../etc/passwd",
    "all-minilm-l6-v2",
    "bge-small-en-v1.5",
    "items.csv",
    "events.jsonl",
    "hostile.jsonl",
    "missing.csv",
    ".",
)
# Free text for arguments: what a shell can pass (no NUL; no surrogates, tested below) and
# no '/' so that nothing the fuzzer writes (--npy, --out, --db) can land outside the sandbox.
ARG_TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00/\\"), max_size=25
)
VALUE = st.one_of(st.sampled_from(VALUES), ARG_TEXT, SQLISH)
# command: (positional arguments, flags, options that take a value)
COMMAND_SPECS: dict[tuple[str, ...], tuple[int, tuple[str, ...], tuple[str, ...]]] = {
    ("recommend", "--domain", "books"): (
        1,
        ("--json", "--csv", "--explain", "--include-seen", "--no-fallback", "--no-adapter"),
        ("-k", "--threshold", "--from", "--user-vector", "--lang", "--history"),
    ),
    ("recommend", "--domain"): (2, ("--explain",), ("-k", "--user-vector")),
    ("score",): (2, ("--json", "--csv"), ("--from", "--user-vector", "--model")),
    ("similar",): (1, ("--json", "--csv"), ("--domain", "-k", "--model")),
    ("forget",): (1, ("--yes",), ()),
    ("encode",): (0, ("--force",), ("--model", "--domain", "--chunk-size")),
    ("embed",): (2, ("--json", "--query"), ("--model", "--file")),
    ("add", "items"): (1, ("--skip-invalid",), ("--format", "--id", "--set-domain", "--text")),
    ("add", "events"): (1, ("--skip-invalid",), ("--format", "--user", "--set-action", "--time")),
    ("delete", "items"): (2, (), ()),
    ("config", "set"): (2, (), ()),
    ("config", "get"): (1, (), ()),
    ("config", "unset"): (1, (), ()),
    ("stats",): (0, ("--json",), ()),
    ("models", "info"): (1, ("--json",), ()),
    ("models", "pull"): (1, (), ()),
    ("threshold", "suggest"): (0, ("--json",), ("--domain", "--user-vector", "--max-users")),
    ("eval",): (0, ("--json", "--no-adapter"), ("--negatives", "--setting", "--domain")),
    ("tune",): (0, (), ("--seed", "--epochs", "--dim", "--sample-users")),
}


NUMBER = st.one_of(st.integers(-3, 40).map(str), st.sampled_from(VALUES[:6]))
# Mostly values of the right type, so that the command runs; sometimes anything at all.
OPTION_VALUES: dict[str, st.SearchStrategy[str]] = {
    **dict.fromkeys(
        (
            "-k",
            "--chunk-size",
            "--negatives",
            "--seed",
            "--epochs",
            "--dim",
            "--max-users",
            "--sample-users",
        ),
        NUMBER,
    ),
    "--threshold": st.one_of(st.floats(-1.5, 1.5).map(str), st.sampled_from(VALUES[:6])),
    "--user-vector": st.sampled_from(
        ["hybrid", "zero-shot", "history-text", "item-mean", "max-sim", "x"]
    ),
    "--lang": st.sampled_from(["en", "zh", "fr"]),
    "--format": st.sampled_from(["csv", "tsv", "jsonl", "json", "xml"]),
    "--setting": st.sampled_from(["mixed", "cross", "both"]),
    "--domain": st.one_of(st.sampled_from(["books", "kitchen"]), VALUE),
    "--model": st.one_of(st.sampled_from(["all-minilm-l6-v2", "bge-small-en-v1.5"]), VALUE),
}


def _option(option: str) -> st.SearchStrategy[tuple[str, str]]:
    return st.tuples(st.just(option), st.one_of(OPTION_VALUES.get(option, VALUE), VALUE))


def _structured(command: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    """A command line that click accepts more often than not: its own options, any values."""
    positional, flags, valued = COMMAND_SPECS[command]
    pairs = st.lists(st.sampled_from(valued).flatmap(_option), max_size=3) if valued else None
    return st.tuples(
        st.lists(VALUE, min_size=positional, max_size=positional),
        st.lists(st.sampled_from(flags), max_size=2, unique=True) if flags else st.just([]),
        pairs if pairs is not None else st.just([]),
    ).map(lambda t: [*command, *t[0], *t[1], *(x for pair in t[2] for x in pair)])


CLI_ARGS = st.tuples(
    st.sampled_from([(), ("--db", "app.db"), ("--db", "app.db"), ("--db", "new.db")]),
    st.one_of(
        *[st.sampled_from(list(COMMAND_SPECS)).flatmap(_structured)] * 3,
        st.tuples(
            st.sampled_from(COMMANDS),
            st.lists(st.one_of(st.sampled_from(OPTIONS), VALUE), max_size=6),
        ).map(lambda t: [*t[0], *t[1]]),
    ),
).map(lambda t: [*t[0], *t[1]])


@pytest.fixture
def cli_sandbox(
    model_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> Path:
    """A working directory four levels deep (so '../../x' stays inside tmp_path) with a
    small encoded database and a few input files; HF_HUB_OFFLINE is set."""
    work = tmp_path / "a" / "b" / "c" / "d"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    items = catalogue_items()[:10] + catalogue_items()[60:70]
    ids = {i["id"] for i in items}
    events = [e for e in catalogue_events(users=8, patterns=4) if e["item"] in ids]
    write_csv(work / "items.csv", items)
    write_jsonl(work / "events.jsonl", events)
    (work / "hostile.jsonl").write_text(
        '{"id": "\'; DROP TABLE items;--", "domain": "books", "title": "x"}\n'
        + '{"id": '
        + "[" * 3000
        + "\n\x00\n",
        encoding="utf-8",
    )
    with Store(work / "pristine.db") as store:
        add_items(store, items)
        add_events(store, events)
        # Vectors under the default model's name, without the cost of the real model.
        encode_items(store, FakeEncoder(name=DEFAULT_MODEL, dim=384))
    return work


def test_fuzz_cli_arguments(cli_sandbox: Path) -> None:
    """Random command lines never end in an uncaught exception or a traceback, and every
    exit code is one of localrec.cli.exit_codes."""

    @fuzz(200)
    @given(args=CLI_ARGS)
    def prop(args: list[str]) -> None:
        FUZZ_RUNS["cli"] += 1
        home_db = Path(os.environ["LOCALREC_HOME"]) / "localrec.db"  # the default --db
        for db in (cli_sandbox / "app.db", cli_sandbox / "new.db", home_db):
            remove_db(db)
        shutil.copy(cli_sandbox / "pristine.db", cli_sandbox / "app.db")
        result = CliRunner().invoke(cli, args, input="")
        assert_clean(result)
        assert result.exit_code in EXIT_CODES, (args, result.output)
        FUZZ_RUNS[f"cli exit {result.exit_code}"] += 1
        if (cli_sandbox / "app.db").exists():
            assert tables(cli_sandbox / "app.db") >= TABLES

    prop()
    fuzz_report("cli", 200)
    print({k: v for k, v in FUZZ_RUNS.items() if k.startswith("cli exit")})
    assert FUZZ_RUNS["cli exit 0"] >= 5 and FUZZ_RUNS["cli exit 1"] >= 5


# Fixed: a non-UTF-8 byte in argv (which Python decodes with surrogateescape, to a lone
# surrogate) used to reach sqlite3 and raise UnicodeEncodeError.


@pytest.mark.parametrize(
    "args",
    [
        ["forget", "--yes", "\udcff"],
        ["config", "set", "template.\udcff", "{title}"],
        ["delete", "items", "\udcff"],
    ],
)
def test_non_utf8_arguments_are_refused_cleanly(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "s.db"
    write_jsonl(tmp_path / "ok.jsonl", [{"id": "a", "domain": "d", "title": "t"}])
    assert_clean(invoke("--db", str(db), "add", "items", str(tmp_path / "ok.jsonl")), 0)
    assert_clean(invoke("--db", str(db), *args), 1)
