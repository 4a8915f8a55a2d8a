"""`add`, `config`, `delete` and `forget` through click's CliRunner: the messages and exit
codes stay, while the work is one library call (open_for_write, delete_items,
forget_user)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import count_sql, run

ITEMS_CSV = "id,domain,title\na,books,Dune\nb,books,Emma\nc,food,Tea\n"
EVENTS_CSV = "user,item,action,review\nu1,a,purchase,\nu1,c,review,secret xyzzy\nu2,b,view,\n"


@pytest.fixture
def db(tmp_path: Path) -> str:
    (tmp_path / "items.csv").write_text(ITEMS_CSV, encoding="utf-8")
    (tmp_path / "events.csv").write_text(EVENTS_CSV, encoding="utf-8")
    path = str(tmp_path / "app.db")
    assert run("--db", path, "add", "items", str(tmp_path / "items.csv"))[0] == 0
    assert run("--db", path, "add", "events", str(tmp_path / "events.csv"))[0] == 0
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["add", "items", "{dir}/noid.csv"],
            "noid.csv:2: missing required column 'id' (columns: ident, domain, title)",
        ),
        (["add", "items", "{dir}/notitle.csv"], "notitle.csv:2: empty title (column 'title')"),
        (["add", "events", "{dir}/events.csv"], "events.csv:2: unknown item 'a'"),
        (["config", "set", "colour", "red"], "unknown configuration key 'colour'; the keys are"),
        (["config", "set", "template.books", "{title"], "invalid template '{title'"),
    ],
    ids=["no-id-column", "empty-title", "unknown-item", "unknown-setting", "bad-template"],
)
def test_a_failed_first_write_names_the_problem_and_leaves_no_database(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "noid.csv").write_text("ident,domain,title\na,books,Dune\n", encoding="utf-8")
    (tmp_path / "notitle.csv").write_text("id,domain,title\na,books,\n", encoding="utf-8")
    (tmp_path / "events.csv").write_text(EVENTS_CSV, encoding="utf-8")
    path = tmp_path / "new.db"
    code, out, err = run("--db", str(path), *[a.replace("{dir}", str(tmp_path)) for a in args])
    assert (code, out) == (1, "")
    assert message in err
    assert sorted(p.name for p in tmp_path.glob("new.db*")) == []


def test_a_first_config_set_of_an_action_weight_creates_the_database(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    assert run("--db", str(path), "config", "set", "action.read", "0.8") == (
        0,
        "action.read = 0.8\n",
        "",
    )
    assert run("--db", str(path), "config", "list")[1] == "action.read = 0.8\n"
    # A template needs its domain's items: on a new database there are none.
    code, out, err = run(
        "--db", str(tmp_path / "other.db"), "config", "set", "template.books", "{title}"
    )
    assert (code, out) == (1, "")
    assert "unknown domain 'books'; the database has: no items yet (add them first)" in err
    assert not (tmp_path / "other.db").exists()


@pytest.mark.parametrize(
    ("ids", "out", "err"),
    [
        (["a"], "deleted 1 of 1 item(s)\n", ""),
        (["a", "b", "c"], "deleted 3 of 3 item(s)\n", ""),
        (["a", "nope", "a"], "deleted 1 of 3 item(s)\n", "not in the catalogue: 'nope'\n"),
        (["x", "y'z"], "deleted 0 of 2 item(s)\n", "not in the catalogue: 'x', \"y'z\"\n"),
    ],
)
def test_delete_items_names_the_ids_it_did_not_find(
    db: str, ids: list[str], out: str, err: str
) -> None:
    assert run("--db", db, "delete", "items", *ids) == (0, out, err)
    assert count_sql(db, "SELECT count(*) FROM items") == 3 - len({"a", "b", "c"} & set(ids))


def test_delete_names_at_most_twenty_unknown_ids(db: str) -> None:
    ids = [f"x{n:02d}" for n in range(25)]
    code, out, err = run("--db", db, "delete", "items", *ids)
    assert (code, out) == (0, "deleted 0 of 25 item(s)\n")
    assert err == "not in the catalogue: " + ", ".join(repr(i) for i in ids[:20]) + "\n"


@pytest.mark.parametrize("command", [["delete", "items", "a"], ["forget", "u1", "--yes"]])
def test_commands_on_a_missing_database_name_it(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "missing.db"
    code, out, err = run("--db", str(path), *command)
    assert (code, out) == (1, "")
    assert f"{path}: no such database; create it with `localrec add items FILE`" in err
    assert not path.exists()


def test_forget_deletes_the_user_and_the_bytes(db: str) -> None:
    code, out, _ = run("--db", db, "forget", "u1", "--yes")
    assert (code, out) == (0, "deleted 2 row(s) of user 'u1' and vacuumed the database\n")
    assert count_sql(db, "SELECT count(*) FROM events WHERE user_id = 'u1'") == 0
    assert count_sql(db, "SELECT count(*) FROM events") == 1
    raw = b"".join(p.read_bytes() for p in Path(db).parent.glob("app.db*"))
    assert b"xyzzy" not in raw


@pytest.mark.parametrize(("answer", "code", "left"), [("n\n", 1, 2), ("y\n", 0, 0)])
def test_forget_asks_first(db: str, answer: str, code: int, left: int) -> None:
    assert run("--db", db, "forget", "u1", input=answer)[0] == code
    assert count_sql(db, "SELECT count(*) FROM events WHERE user_id = 'u1'") == left
