"""`localrec eval` and `localrec tune` end to end on a slice of the real Food-Kitchen data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from localrec.data.loading import db_as_dataset
from localrec.evaluation.scorers import EmbeddingScorer
from localrec.store.db import Store
from localrec.store.ingest import add_events, add_items
from scripts.food_kitchen import write_slice
from tests.conftest import link_models, require_data
from tests.helpers import run


@pytest.fixture(scope="module")
def data_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_slice(require_data(), tmp_path_factory.mktemp("fk") / "food-kitchen-slice", 30)


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory, pulled_home: Path) -> Path:
    """One LOCALREC_HOME for the module, so the slice's vectors are encoded once."""
    return link_models(pulled_home, tmp_path_factory.mktemp("eval-home"))


@pytest.fixture
def model_home(module_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOCALREC_HOME", str(module_home))
    return module_home


def test_eval_json_has_every_method_in_both_settings(
    model_home: Path, data_slice: Path, tmp_path: Path
) -> None:
    code, out, err = run(
        "eval", str(data_slice), "--negatives", "99", "--json", "--report", str(tmp_path / "report")
    )
    assert code == 0, err
    data = json.loads(out)
    assert (data["split"], data["negatives"], data["seed"]) == ("test", 99, 42)
    rows = data["results"]
    methods = {r["method"] for r in rows}
    assert {
        "random",
        "popularity",
        "itemknn",
        "itemknn-2hop",
        "tfidf",
        "localrec:history-text",
        "localrec:item-mean",
        "localrec:zero-shot",
        "localrec:max-sim",
    } <= methods
    # Without a tuned adapter there is no tuned hybrid to report.
    assert "localrec:hybrid" not in methods
    assert {(r["setting"], r["domain"]) for r in rows} == {
        (s, d) for s in ("mixed", "cross") for d in ("food", "kitchen")
    }
    for r in rows:
        assert 0.0 <= r["ndcg@10"] <= r["hr@10"] <= 1.0 and r["n"] > 0
        assert r["hr@1"] <= r["hr@5"] <= r["hr@10"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| itemknn | mixed |" in report
    assert (tmp_path / "report" / "ndcg10_by_method.png").stat().st_size > 1000
    assert (tmp_path / "report" / "ndcg10_by_history_mixed.png").exists()
    # The item vectors are cached for the next run.
    code, out2, err = run(
        "eval", str(data_slice), "--negatives", "99", "--json", "--setting", "mixed"
    )
    assert code == 0 and "encoding items" not in err
    again = {(r["method"], r["domain"]): r["ndcg@10"] for r in json.loads(out2)["results"]}
    first = {(r["method"], r["domain"]): r["ndcg@10"] for r in rows if r["setting"] == "mixed"}
    assert again == first  # same seed, same candidates, same numbers


def test_eval_compares_every_method_with_one_paired(
    model_home: Path, data_slice: Path, tmp_path: Path
) -> None:
    args = ["eval", str(data_slice), "--negatives", "99", "--setting", "mixed"]
    code, out, err = run(*args, "--compare", "itemknn", "--json")
    assert code == 0, err
    data = json.loads(out)
    ndcg = {(r["method"], r["domain"]): r["ndcg@10"] for r in data["results"]}
    comparisons = data["comparisons"]
    assert {(c["method"], c["domain"]) for c in comparisons} == {
        key for key in ndcg if key[0] != "itemknn"
    }
    for c in comparisons:
        # The mean paired difference is the difference of the two means.
        expected = ndcg[(c["method"], c["domain"])] - ndcg[("itemknn", c["domain"])]
        assert c["ndcg@10_difference"] == pytest.approx(expected)
        assert c["ci_low"] <= c["ndcg@10_difference"] <= c["ci_high"]
        assert c["baseline"] == "itemknn" and c["setting"] == "mixed"
    code, out, err = run(*args, "--compare", "itemknn", "--report", str(tmp_path))
    assert code == 0, err
    assert "NDCG@10 minus itemknn's on the same cases" in out
    assert "localrec:max-sim" in out.split("minus itemknn's")[1]
    report = (tmp_path / "report.md").read_text()
    assert "## NDCG@10 minus itemknn's on the same cases" in report
    assert "| localrec:max-sim | mixed | food |" in report.split("## NDCG@10 minus")[1]


def test_tune_then_eval_adds_tuned_rows(model_home: Path, data_slice: Path) -> None:
    code, out, err = run("tune", str(data_slice), "--epochs", "2", "--dim", "16")
    assert code == 0, err
    # On this small slice (validation: valid.txt plus a case cut from each training user
    # of both domains) only food's adapter beats zero-shot text by more than an SE.
    assert "food: epoch" in out
    assert "kitchen: no adapter kept, zero-shot serves it: on the validation split" in out
    assert "valid NDCG@10" in err
    code, out, _ = run("eval", str(data_slice), "--negatives", "99", "--json", "--setting", "cross")
    rows = {(r["method"], r["domain"]): r["ndcg@10"] for r in json.loads(out)["results"]}
    assert {m for m, _ in rows} >= {
        "localrec:tuned",
        "localrec:hybrid",
        "localrec:zero-shot",
    }
    # Kitchen has no adapter: its tuned and hybrid rows are the zero-shot default's.
    zero_shot = rows[("localrec:zero-shot", "kitchen")]
    assert rows[("localrec:tuned", "kitchen")] == rows[("localrec:hybrid", "kitchen")] == zero_shot
    code, out, _ = run(
        "eval", str(data_slice), "--negatives", "99", "--json", "--setting", "cross", "--no-adapter"
    )
    methods = {r["method"] for r in json.loads(out)["results"]}
    assert "localrec:tuned" not in methods and "localrec:hybrid" not in methods
    assert "localrec:zero-shot" in methods


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["eval", "/no/such/dir"], 2, "does not exist"),
        (["eval", "{empty}"], 1, "items.jsonl: missing"),
        (["eval", "{slice}", "--setting", "sideways"], 2, "'sideways' is not one of"),
        (["eval", "{slice}", "--negatives", "0"], 2, "0 is not in the range"),
        (["eval", "{slice}", "--negatives", "5000"], 1, "too few for 5000 negatives"),
        (["eval", "{slice}", "--model", "nope"], 1, "unknown model 'nope'"),
        (["eval", "{slice}", "--compare", "nope"], 1, "cannot compare with 'nope'"),
        (["--db", "{empty}/x.db", "eval", "{slice}"], 2, "or --db"),
        (["--db", "{empty}/x.db", "tune", "{slice}"], 2, "not both"),
    ],
)
def test_eval_errors(
    model_home: Path, data_slice: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    (tmp_path / "empty").mkdir()
    args = [
        a.replace("{slice}", str(data_slice)).replace("{empty}", str(tmp_path / "empty"))
        for a in args
    ]
    exit_code, out, err = run(*args)
    assert exit_code == code, err
    assert message in err and "Traceback" not in err + out


def test_database_leave_last_out(tmp_path: Path) -> None:
    with Store(tmp_path / "d.db") as store:
        add_items(
            store,
            [{"id": f"i{n}", "domain": "a" if n < 5 else "b", "title": f"t{n}"} for n in range(10)],
        )
        add_events(
            store,
            [
                {"user": "u1", "item": "i1", "time": 1},
                {"user": "u1", "item": "i7", "time": 2},
                {"user": "u2", "item": "i2", "time": 1},
                {"user": "u3", "item": "i3", "time": 1},
                {"user": "u3", "item": "i4", "time": 2},
            ],
        )
        dataset, index = db_as_dataset(store)
        assert [s.tolist() for s in dataset.test] == [
            [index["i1"], index["i7"]],
            [index["i3"], index["i4"]],
        ]
        only_b, _ = db_as_dataset(store, "b")
        assert len(only_b.test) == 1
        assert [s.tolist() for s in dataset.train] == [
            [index["i1"]],
            [index["i2"]],
            [index["i3"]],
        ]


def test_db_tuning_split_never_sees_the_last_event(tmp_path: Path) -> None:
    """`tune` on a database chooses its epoch on each user's second-to-last event and
    trains on neither of the last two, so a later `eval` on the last events is honest."""
    with Store(tmp_path / "db.db") as store:
        add_items(store, [{"id": f"i{n}", "domain": "a", "title": f"t{n}"} for n in range(6)])
        add_events(
            store,
            [
                {"user": "u1", "item": f"i{n}", "time": n} for n in (1, 2, 3, 4)
            ]  # long enough for a validation case
            + [{"user": "u2", "item": "i1", "time": 1}, {"user": "u2", "item": "i5", "time": 2}],
        )
        dataset, index = db_as_dataset(store, hold_out=2)
    i = index
    assert [s.tolist() for s in dataset.test] == [[i["i1"], i["i2"], i["i3"]]]
    # u1 trains on i1, i2 only; u2 (too short to validate on) not on its last event.
    assert [s.tolist() for s in dataset.train] == [[i["i1"], i["i2"]], [i["i1"]]]


def test_embedding_scorer_item_mean_is_the_weighted_mean() -> None:
    vectors = np.eye(4, dtype=np.float32)
    scorer = EmbeddingScorer("x", "item-mean", vectors, np.zeros(4, np.int8), half_life=1.0)
    scores = scorer.score([np.array([0, 1])], np.array([[2, 0, 1]]), 0)
    # weights 0.5 (item 0) and 1 (item 1), normalised: item 1 scores highest
    assert scores.shape == (1, 3) and scores[0, 2] > scores[0, 1] > scores[0, 0]


def test_a_missing_split_fails_before_any_encoding(
    model_home: Path, data_slice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    no_valid = tmp_path / "no-valid"
    shutil.copytree(data_slice, no_valid)
    (no_valid / "valid.txt").unlink()

    def must_not_encode(*args: object, **kwargs: object) -> None:
        raise AssertionError("the encoder was opened before the split was checked")

    monkeypatch.setattr("localrec.evaluation.runner.open_encoder", must_not_encode)
    code, out, err = run("eval", str(no_valid), "--split", "valid")
    assert code == 1 and "no-valid: the valid split is empty or missing" in err
    assert "Traceback" not in err + out
