"""`eval` on a user's own database, with the real model: it measures history text, yet
keeps no vector of a history in the database, so `forget` has nothing else to find."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import count_sql, run

SECRET_USER = "alice-7f3a-secret"


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # One llama.cpp thread: on two busy cores, spinning threads cost more than they give.
    monkeypatch.setattr("localrec.embedding.llama_encoder.physical_cores", lambda: 1)
    titles = {
        "books": ["Dune", "Emma", "Ulysses", "Beloved", "Hamlet", "Walden", "Ivanhoe"],
        "food": ["green tea", "olive oil", "dark chocolate", "rye bread", "honey", "miso", "rice"],
    }
    items = ["id,domain,title"] + [
        f"{domain[0]}{n},{domain},{title}"
        for domain, names in titles.items()
        for n, title in enumerate(names)
    ]
    (tmp_path / "items.csv").write_text("\n".join(items) + "\n", encoding="utf-8")
    histories = {SECRET_USER: ["b0", "f1", "b2", "f3"], "bob": ["f4", "b5", "f6"]}
    events = ["user,item,time"] + [
        f"{user},{item},{t}" for user, seq in histories.items() for t, item in enumerate(seq)
    ]
    (tmp_path / "events.csv").write_text("\n".join(events) + "\n", encoding="utf-8")
    db = tmp_path / "app.db"
    assert run("--db", str(db), "add", "items", str(tmp_path / "items.csv"))[0] == 0
    assert run("--db", str(db), "add", "events", str(tmp_path / "events.csv"))[0] == 0
    return db


def test_eval_on_a_database_keeps_no_vectors_of_histories(model_home: Path, app_db: Path) -> None:
    args = ("--db", str(app_db), "eval", "--negatives", "5", "--setting", "mixed", "--json")
    code, out, err = run(*args)
    assert code == 0, err
    methods = {row["method"] for row in json.loads(out)["results"]}
    assert "localrec:history-text" in methods
    assert count_sql(app_db, "SELECT count(*) FROM vectors WHERE kind = 'item'") == 14
    assert count_sql(app_db, "SELECT count(*) FROM vectors WHERE kind = 'user'") == 0
    assert count_sql(app_db, "SELECT count(*) FROM history_vectors") == 0
    # The same numbers again: nothing was cached that could change them.
    assert run(*args)[1] == out
    code, out, _ = run("--db", str(app_db), "forget", SECRET_USER, "--yes")
    assert (code, out) == (
        0,
        f"deleted 4 row(s) of user {SECRET_USER!r} and vacuumed the database\n",
    )
    assert SECRET_USER.encode() not in app_db.read_bytes()
