"""No silent mistakes when adding data: options naming columns a file lacks are errors,
action words localrec does not weigh and columns it does not embed are named in notes,
and `-` reads stdin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from localrec.errors import InputError
from localrec.store.config import set_config
from localrec.store.db import Store
from localrec.store.ingest import EventColumns, ItemColumns, add_events, add_events_file, add_items
from tests.helpers import run, write_jsonl

ITEMS = [
    {"id": "d1", "domain": "books", "title": "Dune", "author": "Frank Herbert", "genre": "sf"},
    {"id": "d2", "domain": "books", "title": "Emma", "author": "Jane Austen", "genre": ""},
]
EVENTS = [
    {"user": "ann", "item": "d1", "when": 1704153600, "stars": 5},
    {"user": "ann", "item": "d2", "when": 1704240000, "stars": 3},
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "t.db") as s:
        add_items(s, ITEMS)
        yield s


def _events_csv(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text("user,item,when,stars\nann,d1,1704153600,5\nann,d2,1704240000,3\n")
    return path


@pytest.mark.parametrize(
    ("columns", "said"),
    [
        (EventColumns(action="read"), "--action 'read': no row has such a column"),
        (EventColumns(time="time_of_day"), "--time 'time_of_day': no row has such a column"),
        (EventColumns(value="rating"), "--value 'rating': no row has such a column"),
        (EventColumns(review="comment"), "--review 'comment': no row has such a column"),
        (
            EventColumns(action="read", time="ts"),
            "--action 'read', --time 'ts': no row has these columns",
        ),
    ],
    ids=["action", "time", "value", "review", "two"],
)
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_option_naming_a_missing_column_is_an_error_listing_the_columns(
    store: Store, tmp_path: Path, columns: EventColumns, said: str, fmt: str
) -> None:
    path = _events_csv(tmp_path) if fmt == "csv" else write_jsonl(tmp_path / "e.jsonl", EVENTS)
    with pytest.raises(InputError) as caught:
        add_events_file(store, path, columns)
    message = str(caught.value)
    assert message.startswith(f"{path}: {said} (the columns are: item, stars, user, when)")
    assert message.endswith(f"nothing from {path} was stored")
    assert store.stats()["events"] == 0


def test_columns_the_file_has_are_read_and_a_default_one_may_be_missing(store: Store) -> None:
    report = add_events(store, EVENTS, EventColumns(time="when", value="stars"))
    assert (report.stored, report.notes) == (2, [])
    events = store.user_events("ann")
    assert [(e.action, e.value) for e, _ in events] == [("purchase", 5.0), ("purchase", 3.0)]
    assert [e.ts for e, _ in events] == [1704153600.0, 1704240000.0]


def test_the_cli_names_the_missing_column_and_the_set_action_fix(tmp_path: Path) -> None:
    db = str(tmp_path / "app.db")
    items = write_jsonl(tmp_path / "items.jsonl", ITEMS)
    assert run("--db", db, "add", "items", str(items))[0] == 0
    events = _events_csv(tmp_path)
    code, out, err = run("--db", db, "add", "events", str(events), "--action", "read")
    assert (code, out) == (1, "")
    assert f"Error: {events}: --action 'read': no row has such a column" in err
    assert "to give every event one action, use --set-action read" in err
    code, out, err = run(
        "--db", db, "add", "events", str(events), "--action", "verb", "--set-action", "read"
    )
    assert code == 1 and "give --action COLUMN ('verb') or --set-action NAME ('read')" in err


def test_an_unknown_action_word_is_stored_and_its_weight_said(store: Store) -> None:
    report = add_events(store, EVENTS, EventColumns(set_action="read"))
    assert report.stored == 2
    [note] = report.notes
    assert note.startswith("action 'read' (2 event(s)) is not one localrec knows (purchase 1.0,")
    assert "it weighs 0.5; give it a weight of its own with" in note
    assert note.endswith("`localrec config set action.read 0.8`")
    set_config(store, "action.read", "0.8")
    assert add_events(store, EVENTS, EventColumns(set_action="read")).notes == []
    assert add_events(store, EVENTS, EventColumns(set_action="view")).notes == []


@pytest.mark.parametrize(
    ("columns", "template", "note"),
    [
        (
            ItemColumns(set_domain="books"),
            None,
            "books: column(s) author, genre are stored but not embedded: an item's text is the "
            "title; to embed them, give them with --text title --text author --text genre, or "
            "name them in a "
            'template (`localrec config set template.books "{title} by {author}"`)',
        ),
        (ItemColumns(set_domain="books", text=("title", "author", "genre")), None, None),
        (
            ItemColumns(set_domain="books", text=("title", "author")),
            None,
            "books: column(s) genre are stored but not embedded: an item's text is the title and "
            "the --text columns",
        ),
        (ItemColumns(set_domain="books"), "{title} by {author} ({genre})", None),
        (
            ItemColumns(set_domain="books"),
            "{title} by {author}",
            "books: column(s) genre are stored but not embedded: an item's text is what "
            "template.books names",
        ),
    ],
    ids=["title-only", "all-text", "one-left", "template-all", "template-one-left"],
)
def test_columns_stored_but_not_embedded_are_named(
    tmp_path: Path, columns: ItemColumns, template: str | None, note: str | None
) -> None:
    rows = [{k: v for k, v in r.items() if k != "domain"} for r in ITEMS]
    with Store(tmp_path / "n.db") as store:
        add_items(store, rows, columns)
        if template is not None:
            set_config(store, "template.books", template)
        report = add_items(store, rows, columns)  # an update: the template now applies
    if note is None:
        assert report.notes == []
    else:
        assert len(report.notes) == 1 and report.notes[0].startswith(note)


def test_the_cli_says_the_note_on_stderr(tmp_path: Path) -> None:
    items = tmp_path / "books.csv"
    items.write_text("id,title,author\nd1,Dune,Frank Herbert\n")
    code, out, err = run(
        "--db", str(tmp_path / "a.db"), "add", "items", str(items), "--set-domain", "books"
    )
    assert (code, out) == (0, f"stored 1 items from {items}\n")
    assert err.startswith("books: column(s) author are stored but not embedded")


def test_add_reads_stdin_with_a_dash(tmp_path: Path) -> None:
    db = str(tmp_path / "app.db")
    items = "id,domain,title\nd1,books,Dune\nd2,books,Emma\n"
    assert run("--db", db, "add", "items", "-", "--format", "csv", input=items) == (
        0,
        "stored 2 items from <stdin>\n",
        "",
    )
    events = "".join(json.dumps(e) + "\n" for e in EVENTS)
    code, out, err = run(
        "--db", db, "add", "events", "-", "--format", "jsonl", "--time", "when", input=events
    )
    assert (code, out, err) == (0, "stored 2 events from <stdin>\n", "")
    with Store(db) as store:
        assert [e.item_id for e, _ in store.user_events("ann")] == ["d1", "d2"]
    # A bad line of stdin is named like one of a file, and stdin needs a format.
    code, out, err = run("--db", db, "add", "items", "-", "--format", "csv", input="id,title\nx,\n")
    assert (code, out) == (1, "") and "<stdin>:2: missing required column 'domain'" in err
    code, _, err = run("--db", db, "add", "items", "-", input=items)
    assert code == 1 and "<stdin>: cannot tell the format from the extension ''" in err
    assert "pass --format" in err
