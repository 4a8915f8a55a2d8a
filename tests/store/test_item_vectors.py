"""Incremental encoding, resume after a crash, and the data commands end to end."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from localrec.cli.main import cli
from localrec.store.config import set_config
from localrec.store.db import Store
from localrec.store.ingest import add_items
from localrec.store.item_vectors import encode_items, iter_item_texts
from tests.conftest import REPO, require_data
from tests.fakes import FakeEncoder
from tests.helpers import run


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "t.db") as s:
        add_items(s, [{"id": f"i{k}", "domain": "d", "title": f"item {k}"} for k in range(100)])
        yield s


def test_second_run_encodes_nothing(store: Store) -> None:
    encoder = FakeEncoder()
    first = encode_items(store, encoder, chunk_size=30)
    assert (first.encoded, first.skipped, first.chunks) == (100, 0, 4)
    again = encode_items(store, encoder)
    assert (again.encoded, again.skipped) == (0, 100)


def test_only_changed_items_are_encoded(store: Store) -> None:
    encode_items(store, FakeEncoder())
    add_items(store, [{"id": "i5", "domain": "d", "title": "new title"}])
    encoder = FakeEncoder()
    report = encode_items(store, encoder)
    assert report.encoded == 1 and encoder.texts_seen == ["new title"]


def test_a_template_change_re_encodes_its_domain(store: Store) -> None:
    encode_items(store, FakeEncoder())
    set_config(store, "template.d", "Product: {title}")
    encoder = FakeEncoder()
    assert encode_items(store, encoder).encoded == 100
    assert encoder.texts_seen[0] == "Product: item 0"


def test_a_template_that_leaves_an_item_no_text_names_both(store: Store) -> None:
    from localrec.errors import InputError

    encode_items(store, FakeEncoder())
    before = store.vector_hashes("fake")
    # `config set` refuses it now; a database may hold one set before it did.
    store.config_set("template.d", "{titel}")
    encoder = FakeEncoder()
    with pytest.raises(
        InputError, match=r"item 'i0' \(d\) has no text with the template '\{titel\}'"
    ):
        encode_items(store, encoder)
    assert encoder.texts_seen == [] and store.vector_hashes("fake") == before


class TruncatingEncoder(FakeEncoder):
    """Says it cut the first text of every batch, as `Encoder.last_truncated` reports."""

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        self.last_truncated = 1 if texts else 0
        return super().encode(texts, query=query)


@pytest.mark.parametrize(("chunk_size", "truncated"), [(30, 4), (100, 1), (7, 15)])
def test_truncated_texts_are_counted_per_chunk(
    store: Store, chunk_size: int, truncated: int
) -> None:
    report = encode_items(store, TruncatingEncoder(), chunk_size=chunk_size)
    assert (report.encoded, report.chunks, report.truncated) == (100, truncated, truncated)


def test_the_document_prefix_is_part_of_the_content_hash(store: Store) -> None:
    from dataclasses import replace

    encode_items(store, FakeEncoder())
    prefixed = FakeEncoder()
    prefixed.spec = replace(prefixed.spec, document_prefix="passage: ")
    assert encode_items(store, prefixed).encoded == 100
    assert encode_items(store, prefixed).encoded == 0


def test_models_keep_vectors_side_by_side(store: Store) -> None:
    encode_items(store, FakeEncoder("m1", dim=8))
    encode_items(store, FakeEncoder("m2", dim=12))
    assert store.item_matrix("m1").matrix.shape == (100, 8)
    assert store.item_matrix("m2").matrix.shape == (100, 12)


class CrashingEncoder(FakeEncoder):
    def __init__(self, crash_after: int) -> None:
        super().__init__()
        self.crash_after = crash_after

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        if self.calls == self.crash_after:
            raise KeyboardInterrupt
        return super().encode(texts, query=query)


def test_interrupted_run_keeps_whole_chunks_and_resumes(store: Store) -> None:
    with pytest.raises(KeyboardInterrupt):
        encode_items(store, CrashingEncoder(crash_after=2), chunk_size=30)
    assert len(store.vector_hashes("fake")) == 60
    report = encode_items(store, FakeEncoder(), chunk_size=30)
    assert (report.encoded, report.skipped) == (40, 60)


def test_sigkill_halfway_then_rerun_encodes_each_item_once(
    tmp_path: Path, model_home: Path
) -> None:
    """A real `localrec encode` with the real model, killed with SIGKILL mid-run."""
    db = tmp_path / "kill.db"
    items = tmp_path / "items.jsonl"
    items.write_text(
        "\n".join(
            json.dumps({"id": f"i{k}", "domain": "d", "title": f"kitchen product number {k} " * 6})
            for k in range(1500)
        )
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    base = [sys.executable, "-m", "localrec", "--db", str(db)]
    subprocess.run([*base, "add", "items", str(items)], check=True, env=env, capture_output=True)
    proc = subprocess.Popen(
        [*base, "encode", "--chunk-size", "100"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.2)
        conn = sqlite3.connect(db, timeout=30)
        n = conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
        conn.close()
        if n >= 300:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(db)
    done = conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
    conn.close()
    assert 300 <= done < 1500 and done % 100 == 0
    out = subprocess.run([*base, "encode"], check=True, env=env, capture_output=True, text=True)
    assert f"encoded {1500 - done} item(s), skipped {done} unchanged" in out.stdout
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*), count(DISTINCT owner) FROM vectors").fetchone() == (
        1500,
        1500,
    )
    conn.close()


def test_cli_add_encode_stats_config(model_home: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    items = tmp_path / "items.csv"
    items.write_text(
        "id,domain,title\nk1,kitchen,Cast iron skillet\nk2,kitchen,Chef knife\nf1,food,Green tea\n"
    )
    events = tmp_path / "events.csv"
    events.write_text("user,item,action,time\nu1,f1,purchase,1\nu1,k1,view,2\n")
    assert run("--db", db, "add", "items", str(items))[1].startswith("stored 3 items")
    assert run("--db", db, "add", "events", str(events))[1].startswith("stored 2 events")
    code, out, _ = run("--db", db, "encode")
    assert code == 0 and "encoded 3 item(s), skipped 0 unchanged" in out
    code, out, _ = run("--db", db, "encode")
    assert "encoded 0 item(s), skipped 3 unchanged" in out
    code, out, _ = run("--db", db, "stats", "--json")
    data = json.loads(out)
    assert data["items"] == {"food": 1, "kitchen": 2} and data["users"] == 1
    assert data["events"] == 2 and data["vectors"] == {"all-minilm-l6-v2": 3}
    assert run("--db", db, "config", "set", "template.kitchen", "Kitchen: {title}")[0] == 0
    assert run("--db", db, "config", "get", "template.kitchen")[1].strip() == "Kitchen: {title}"
    assert "encoded 2 item(s), skipped 1" in run("--db", db, "encode")[1]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["add", "items", "{tmp}/bad.csv"],
            1,
            "bad.csv:2: empty title (column 'title'); nothing from",
        ),
        (["add", "items", "{tmp}/bad.csv", "--format", "xml"], 2, "'xml' is not one of"),
        (["config", "set", "colour", "blue"], 1, "unknown configuration key 'colour'"),
        (["config", "set", "template.x", "{title"], 1, "invalid template"),
        (["encode", "--domain", "nope"], 1, "unknown domain 'nope'"),
        (["encode", "--model", "nope"], 1, "unknown model 'nope'"),
    ],
)
def test_cli_data_errors(
    model_home: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    db = str(tmp_path / "e.db")
    (tmp_path / "good.csv").write_text("id,domain,title\na,d,x\n")
    (tmp_path / "bad.csv").write_text("id,domain,title\na,d,\n")
    run("--db", db, "add", "items", str(tmp_path / "good.csv"))
    exit_code, _, err = run("--db", db, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert exit_code == code, err
    assert message in err and "Traceback" not in err


def test_real_catalogue_round_trips(tmp_path: Path) -> None:
    """All 36,298 Food-Kitchen items and every sequence as events, stored and read back."""
    from localrec.data.dataset import load_dataset
    from localrec.data.importer import import_dataset

    data = require_data()
    dataset = load_dataset(data)
    with Store(tmp_path / "fk.db") as store:
        summary = import_dataset(store, dataset)
        assert summary["items"] == 36_298
        stats = store.stats()
        assert stats["items"] == {"food": 8661, "kitchen": 27637}
        n_events = sum(len(s) for s in (*dataset.train, *dataset.valid, *dataset.test))
        assert stats["events"] == n_events
        texts = {item_id: (domain, text) for item_id, domain, text in iter_item_texts(store)}
        for index in (0, 8660, 8661, 36297):
            item_id = str(int(dataset.item_ids[index]))
            assert texts[item_id] == (
                dataset.domain_names[dataset.domains[index]],
                dataset.titles[index],
            )
        encoder = FakeEncoder(dim=384)
        encode_items(store, encoder, chunk_size=5000)
        matrix = store.item_matrix("fake")
        expected = encoder.encode([texts[i][1] for i in matrix.ids])
        assert matrix.matrix.tobytes() == expected.tobytes()
        first_test_user = store.user_events("test:1")
        assert [e.item_id for e, _ in first_test_user] == [
            str(int(dataset.item_ids[i])) for i in dataset.test[0]
        ]


def test_a_failed_first_import_leaves_no_database(tmp_path: Path) -> None:
    bad = tmp_path / "items.csv"
    bad.write_text("id,domain,title\n1,d,ok\n1,d,again\n", encoding="utf-8")
    db = tmp_path / "fresh.db"
    result = CliRunner().invoke(cli, ["--db", str(db), "add", "items", str(bad)])
    assert result.exit_code == 1 and "duplicate item id '1'" in result.stderr
    assert not db.exists() and not any(tmp_path.glob("fresh.db*"))
    # An existing database stays, unchanged, when an import into it fails.
    good = tmp_path / "good.csv"
    good.write_text("id,domain,title\n2,d,fine\n", encoding="utf-8")
    assert CliRunner().invoke(cli, ["--db", str(db), "add", "items", str(good)]).exit_code == 0
    assert CliRunner().invoke(cli, ["--db", str(db), "add", "items", str(bad)]).exit_code == 1
    with Store(db) as store:
        assert list(store.get_items(["1", "2"])) == ["2"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"chunk_size": 0}, "chunk_size must be a positive"), ({"domain": "zzz"}, "unknown domain")],
)
def test_encode_arguments_are_checked(store: Store, kwargs: dict[str, Any], message: str) -> None:
    from localrec.errors import InputError

    with pytest.raises(InputError, match=message):
        encode_items(store, FakeEncoder(), **kwargs)
