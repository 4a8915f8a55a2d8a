"""Recommender: user vectors, lists, explanations, ad-hoc users, cold start, CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localrec.cli.exit_codes import NO_PERSONAL_LIST
from localrec.errors import DatabaseError, InputError, NotEncoded
from localrec.recommend.recommender import Recommender, UserVector
from localrec.recommend.results import OTHERS_NEXT, OTHERS_TWO_STEPS, SIMILAR_TEXT, Explanation
from localrec.store.db import Store
from localrec.store.ingest import add_events, add_items
from localrec.store.item_vectors import encode_items
from tests.fakes import FakeEncoder
from tests.helpers import run

BOOKS = ["The Three-Body Problem", "Dune", "Foundation", "Neuromancer"]
MUSIC = ["Kind of Blue", "Blue Train", "Abbey Road", "Dune", "Foundation", "Thriller"]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "rec.db"
    with Store(path) as store:
        add_items(
            store, [{"id": f"b{i}", "domain": "books", "title": t} for i, t in enumerate(BOOKS)]
        )
        add_items(
            store, [{"id": f"m{i}", "domain": "music", "title": t} for i, t in enumerate(MUSIC)]
        )
        add_events(
            store,
            [
                {"user": "ann", "item": "b1", "action": "purchase", "time": 1},
                {"user": "ann", "item": "b2", "action": "rate", "value": 5, "time": 2},
                {"user": "ann", "item": "m0", "action": "view", "time": 3},
                {"user": "bob", "item": "m5", "time": 1},
                {"user": "cat", "item": "m5", "time": 1},
                {"user": "cat", "item": "m2", "time": 2},
            ],
        )
        encode_items(store, FakeEncoder())
    return path


@pytest.fixture
def rec(db: Path) -> Any:
    with Recommender(db, encoder=FakeEncoder()) as r:
        yield r


@pytest.mark.parametrize("method", ["hybrid", "zero-shot", "history-text", "item-mean", "max-sim"])
def test_every_user_vector_gives_a_ranked_list(rec: Recommender, method: UserVector) -> None:
    result = rec.recommend("ann", domain="music", k=3, user_vector=method)
    assert len(result) == 3 and result.fallback is None
    scores = [r.score for r in result]
    assert scores == sorted(scores, reverse=True)
    assert "m0" not in [r.item_id for r in result]  # already seen
    assert all(r.domain == "music" for r in result)


def test_text_bridge_finds_the_same_title_across_domains(rec: Recommender) -> None:
    """With identical text, the cross-domain item is the nearest: the point of text."""
    result = rec.recommend(
        "ann", domain="music", k=2, from_domains=["books"], user_vector="max-sim", explain=True
    )
    # "Foundation" (the most recent book) and "Dune" (one event earlier) exist in music too.
    assert [r.item_id for r in result] == ["m4", "m3"]
    assert result.items[0].score == pytest.approx(1.0, abs=1e-5)
    assert result.items[1].score == pytest.approx(0.5 ** (1 / 10), abs=1e-5)
    assert result.items[1].because[0].item_id == "b1"
    assert result.items[1].because[0].similarity == pytest.approx(1.0, abs=1e-5)


def test_item_mean_weights_purchase_and_recency(rec: Recommender) -> None:
    profile = rec.profile("ann", user_vector="item-mean")
    assert [i.item_id for i in profile.items] == ["b1", "b2", "m0"]
    assert profile.weights.sum() == pytest.approx(1.0)
    assert profile.weights[2] < profile.weights[1]  # a view counts less than a 5/5 rating


def test_include_seen(rec: Recommender) -> None:
    result = rec.recommend("ann", domain="music", k=10, include_seen=True)
    assert "m0" in [r.item_id for r in result]


def test_threshold_list_and_combined(rec: Recommender) -> None:
    full = rec.recommend("ann", domain="music", k=None, threshold=-1.0)
    assert len(full) == 5  # every unseen music item
    above = rec.recommend("ann", domain="music", k=None, threshold=0.3, user_vector="max-sim")
    assert all(r.score >= 0.3 for r in above)
    top1 = rec.recommend("ann", domain="music", k=1, threshold=0.3, user_vector="max-sim")
    assert [r.item_id for r in top1] == [r.item_id for r in above][:1]


def test_ad_hoc_user_is_written_nowhere(db: Path, rec: Recommender) -> None:
    before = _dump(db)
    result = rec.recommend(
        domain="music", history="bought Dune; rated Neuromancer 5/5", k=3, explain=True
    )
    assert result.items[0].item_id == "m3"
    assert result.items[0].because[0].title == "Dune"
    pairs = rec.recommend(
        domain="music", history=[("b1", "purchase"), ("some free text", "view")], k=2
    )
    assert pairs.items[0].item_id == "m3"
    assert _dump(db) == before


def _dump(path: Path) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return [list(conn.execute(f"SELECT * FROM {t}")) for t in ("items", "events", "vectors")]
    finally:
        conn.close()


def test_stored_users_history_text_vector_is_cached(db: Path, rec: Recommender) -> None:
    rec.recommend("ann", domain="music", user_vector="history-text")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM vectors WHERE kind = 'user'").fetchone()[0] == 1


def test_cold_start_is_a_flagged_fallback(rec: Recommender) -> None:
    result = rec.recommend("nobody", domain="music", k=2)
    assert result.fallback == "popular" and "no usable history" in result.notes[0]
    assert [r.item_id for r in result] == [
        "m5",
        "m0",
    ]  # most popular first, ties in catalogue order
    nothing = rec.recommend("nobody", domain="music", fallback=False)
    assert nothing.items == [] and nothing.fallback is None
    assert nothing.notes == ["user 'nobody' has no usable history"]
    only_music = rec.recommend("bob", domain="books", from_domains=["books"])
    assert only_music.fallback == "popular"


def test_new_item_without_interactions_is_recommended_on_text(db: Path) -> None:
    with Store(db) as store:
        add_items(store, [{"id": "m9", "domain": "music", "title": "Neuromancer"}])
        encode_items(store, FakeEncoder())
    with Recommender(db, encoder=FakeEncoder()) as rec:
        result = rec.recommend(domain="music", history="bought Neuromancer", k=1)
        assert result.items[0].item_id == "m9"


def test_score_and_similar(rec: Recommender) -> None:
    scored = rec.score("ann", ["m4", "m5"], user_vector="max-sim", from_domains=["books"])
    assert [s.item_id for s in scored] == ["m4", "m5"]
    assert scored[0].score == pytest.approx(1.0, abs=1e-5)
    close = rec.similar("b1", domain="music", k=1)
    assert close[0].item_id == "m3"
    assert rec.similar("m3", k=2)[0].item_id != "m3"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda r: r.recommend("ann", domain="films"), InputError, "unknown domain 'films'"),
        (lambda r: r.recommend("ann", domain="music", k=0), InputError, "k must be a positive"),
        (lambda r: r.recommend("ann", domain="music", threshold=2), InputError, "between -1 and 1"),
        (
            lambda r: r.recommend("ann", domain="music", user_vector="magic"),
            InputError,
            "unknown user vector 'magic'",
        ),
        (lambda r: r.score("ann", ["nope"]), InputError, "unknown or unencoded item"),
        (lambda r: r.similar("nope"), InputError, "unknown item 'nope'"),
    ],
)
def test_bad_requests(rec: Recommender, call: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call(rec)


def test_database_encoded_with_another_model(db: Path) -> None:
    with (
        Recommender(db, encoder=FakeEncoder(name="other")) as rec,
        pytest.raises(NotEncoded, match="run `localrec encode --model other`"),
    ):
        rec.recommend("ann", domain="music")


def test_dimension_mismatch(db: Path) -> None:
    with (
        Recommender(db, encoder=FakeEncoder(dim=32)) as rec,
        pytest.raises(DatabaseError, match="16 dimensions but the model has 32"),
    ):
        rec.recommend("ann", domain="music")


def test_several_recommenders_read_one_database(db: Path) -> None:
    import threading

    results: list[list[str]] = []

    def work() -> None:
        with Recommender(db, encoder=FakeEncoder()) as r:
            for _ in range(20):
                results.append(
                    [
                        x.item_id
                        for x in r.recommend("ann", domain="music", k=3, user_vector="item-mean")
                    ]
                )

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80 and all(r == results[0] for r in results)


def test_only_the_cli_uses_click() -> None:
    """The library is click-free: an app embeds it without the CLI's machinery."""
    package = Path(__file__).resolve().parents[2] / "localrec"
    users = {p.parent.name for p in package.rglob("*.py") if "import click" in p.read_text()}
    assert users == {"cli"}


# -- CLI with the real model --------------------------------------------------------------


@pytest.fixture
def real_db(model_home: Path, tmp_path: Path) -> str:
    path = str(tmp_path / "real.db")
    items = tmp_path / "items.jsonl"
    rows = [
        ("f1", "food", "Organic green tea, 100 bags"),
        ("f2", "food", "Dark roast whole bean coffee"),
        ("f3", "food", "Extra virgin olive oil"),
        ("k1", "kitchen", "Electric kettle with temperature control for tea"),
        ("k2", "kitchen", "Burr coffee grinder"),
        ("k3", "kitchen", "Non-stick frying pan"),
        ("k4", "kitchen", "Shower curtain hooks"),
    ]
    items.write_text("\n".join(json.dumps({"id": i, "domain": d, "title": t}) for i, d, t in rows))
    events = tmp_path / "events.csv"
    events.write_text("user,item,time\nu1,f1,1\nu1,f2,2\nu2,k3,1\nu3,k3,1\n")
    assert run("--db", path, "add", "items", str(items))[0] == 0
    assert run("--db", path, "add", "events", str(events))[0] == 0
    assert run("--db", path, "encode")[0] == 0
    return path


def test_cli_recommend_json(real_db: str) -> None:
    code, out, _ = run(
        "--db", real_db, "recommend", "u1", "--domain", "kitchen", "-k", "2", "--explain", "--json"
    )
    assert code == 0
    data = json.loads(out)
    assert (data["user"], data["domain"], data["fallback"], data["history_size"]) == (
        "u1",
        "kitchen",
        None,
        2,
    )
    rows = data["items"]
    assert {r["item_id"] for r in rows} == {"k1", "k2"}  # kettle for tea, grinder for coffee
    assert {"item_id", "domain", "score", "because"} <= rows[0].keys()
    assert set(rows[0]["because"]) <= {"f1", "f2"} and rows[0]["because"]
    why = rows[0]["because_detail"][0]
    titles = {"f1": "Organic green tea, 100 bags", "f2": "Dark roast whole bean coffee"}
    assert why["title"] == titles[why["item_id"]] and why["action"] == "purchase"
    assert why["cf_share"] is None and 0 < why["cosine"] == why["similarity"] <= 1


def test_cli_threshold_without_k_is_the_whole_list(real_db: str) -> None:
    code, out, _ = run(
        "--db", real_db, "recommend", "u1", "--domain", "kitchen", "--threshold", "-1", "--json"
    )
    assert code == 0 and len(json.loads(out)["items"]) == 4


def test_cli_ad_hoc_history_and_table(real_db: str) -> None:
    code, out, _ = run(
        "--db",
        real_db,
        "recommend",
        "--history",
        "bought a teapot; rated matcha 5/5",
        "--domain",
        "kitchen",
        "-k",
        "1",
        "--explain",
    )
    assert code == 0 and "because you" in out
    assert "k1" in out or "k2" in out  # the kettle or the grinder, not pans or hooks


def test_cli_unknown_user_is_cold_start(real_db: str) -> None:
    code, out, err = run("--db", real_db, "recommend", "ghost", "--domain", "kitchen", "--json")
    assert code == 0 and "no usable history" in err
    data = json.loads(out)
    assert data["items"][0]["item_id"] == "k3"  # the most popular kitchen item
    assert data["items"][0]["score"] == 0.0 and data["fallback"] == "popular"
    assert data["notes"] == [
        "user 'ghost' has no usable history; showing the most popular kitchen items"
    ]
    code, out, err = run(
        "--db", real_db, "recommend", "ghost", "--domain", "kitchen", "--no-fallback"
    )
    assert (code, out) == (NO_PERSONAL_LIST, "")
    assert err == "no recommendations: user 'ghost' has no usable history\n"
    code, out, err = run(
        "--db", real_db, "recommend", "ghost", "--domain", "kitchen", "--no-fallback", "--json"
    )
    assert code == NO_PERSONAL_LIST and "no recommendations" in err
    data = json.loads(out)
    assert (data["items"], data["fallback"], data["history_size"]) == ([], None, 0)
    assert data["notes"] == ["user 'ghost' has no usable history"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["recommend", "u1", "--domain", "garden"], 1, "unknown domain 'garden'"),
        (["recommend", "u1", "--domain", "kitchen", "-k", "0"], 2, "0 is not a positive"),
        (["recommend", "u1", "--domain", "kitchen", "--threshold", "3"], 2, "not a cosine"),
        (["recommend", "--domain", "kitchen"], 2, "give a USER or --history"),
        (["recommend", "u1", "--domain", "kitchen", "--user-vector", "x"], 2, "'x' is not one of"),
        (
            ["recommend", "u1", "--domain", "kitchen", "--model", "bge-small-en-v1.5"],
            1,
            "localrec encode --model bge-small-en-v1.5",
        ),
        (["similar", "nope"], 1, "unknown item 'nope'"),
        (["score", "u1", "nope"], 1, "unknown or unencoded item"),
        (["recommend", "u1", "--domain", "kitchen", "--json", "--csv"], 2, "--json or --csv"),
        (["score", "u1", "k1", "--json", "--csv"], 2, "give --json or --csv, not both"),
        (["similar", "f2", "--json", "--csv"], 2, "give --json or --csv, not both"),
        (
            ["threshold", "suggest", "--domain", "kitchen", "--plot", "/no/such/dir/t.png"],
            2,
            "the directory /no/such/dir does not exist",
        ),
    ],
)
def test_cli_recommend_errors(real_db: str, args: list[str], code: int, message: str) -> None:
    exit_code, out, err = run("--db", real_db, *args)
    assert exit_code == code, err
    assert message in err and "Traceback" not in err + out


def test_cli_score_and_similar(real_db: str) -> None:
    code, out, _ = run("--db", real_db, "score", "u1", "k1", "k4", "--json")
    rows = json.loads(out)
    assert code == 0 and rows[0]["score"] > rows[1]["score"]
    code, out, _ = run("--db", real_db, "similar", "f2", "--domain", "kitchen", "-k", "1", "--csv")
    assert code == 0 and out.splitlines()[1].startswith("k2,")


def test_cli_forget(real_db: str) -> None:
    code, out, _ = run("--db", real_db, "forget", "u1", "--yes")
    assert code == 0 and "deleted 2 row(s)" in out
    code, _, err = run("--db", real_db, "recommend", "u1", "--domain", "kitchen")
    assert "no usable history" in err
    assert np.isfinite(1.0)


def test_from_still_leaves_out_what_the_user_has(rec: Recommender) -> None:
    """--from narrows the history the profile is made of, not what the user owns: ann's
    music item m0 stays out of a music list built from her books alone."""
    result = rec.recommend("ann", domain="music", k=None, threshold=-1, from_domains=["books"])
    assert result.history_size == 2
    ids = [r.item_id for r in result]
    assert "m0" not in ids and sorted(ids) == ["m1", "m2", "m3", "m4", "m5"]
    adhoc = rec.recommend(
        history=[("b1", "purchase"), ("m0", "view")], domain="music", k=10, from_domains=["books"]
    )
    assert "m0" not in [r.item_id for r in adhoc]


def test_threshold_suggest_with_from_leaves_out_owned_items(db: Path) -> None:
    from localrec.recommend.threshold import suggest_threshold

    with Store(db) as store:
        add_events(store, [{"user": "dan", "item": "m3", "time": 1}])
        add_events(store, [{"user": "dan", "item": "b1", "time": 2}])
        add_events(store, [{"user": "dan", "item": "m3", "time": 3}])
    with Recommender(db, encoder=FakeEncoder()) as rec:
        report = suggest_threshold(rec, "music", from_domains=["books"], thetas=[-1.0])
    # ann's held-out m0 is new to her: a hit in a list of all 6 music items. dan's held-out
    # m3 is an item he had before, so it is not in his list of 5: no hit.
    assert report.users == 2 and report.points[0].recall == 0.5
    assert report.points[0].mean_size == 5.5


def test_cli_delete_names_the_ids_it_did_not_find(real_db: str) -> None:
    code, out, err = run("--db", real_db, "delete", "items", "k4", "nope", "k4")
    assert code == 0 and "deleted 1 of 3 item(s)" in out
    assert "not in the catalogue: 'nope'" in err


@pytest.mark.parametrize(
    ("title", "cell"),
    [
        ('=HYPERLINK("http://x")', "'=HYPERLINK"),
        ("+1 kettle", "'+1 kettle"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-20% pan", "'-20% pan"),
        ("Kettle = good", "Kettle = good"),
    ],
)
def test_csv_cells_a_spreadsheet_would_run_stay_text(title: str, cell: str) -> None:
    from localrec.cli.output import format_csv

    out = format_csv([{"title": title, "score": -0.5}], ["title", "score"])
    row = out.splitlines()[1]
    assert row.lstrip('"').startswith(cell) and row.endswith(",-0.5")


def test_items_without_a_vector_are_named_in_a_note(db: Path) -> None:
    with Store(db) as store:
        add_items(store, [{"id": "m9", "domain": "music", "title": "Blue in Green"}])
    with Recommender(db, encoder=FakeEncoder()) as rec:
        result = rec.recommend("ann", domain="music", k=10)
        assert "m9" not in [r.item_id for r in result]
        assert "1 music item(s) have no fake vector yet" in result.notes[-1]
        assert "localrec encode" in result.notes[-1]
        assert not rec.recommend("ann", domain="books", k=3).notes
        # The count is kept until the catalogue or its vectors change.
        encode_items(rec.store, FakeEncoder())
        again = rec.recommend("ann", domain="music", k=10)
        assert not again.notes and "m9" in [r.item_id for r in again]


def test_an_encoder_passed_in_stays_open_after_the_recommender_closes(
    real_db: str, encoder: Any
) -> None:
    with Recommender(real_db, encoder=encoder) as rec:
        assert len(rec.recommend(domain="kitchen", history="bought green tea", k=2).items) == 2
    assert encoder.encode(["still open"]).shape == (1, 384)


BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("recommend", {"user": "ann", "domain": "music", "k": 2.5}, "k must be a whole number"),
    ("recommend", {"user": "ann", "domain": "music", "k": "5"}, "k must be a whole number"),
    ("recommend", {"user": "ann", "domain": "music", "k": True}, "k must be a whole number"),
    ("recommend", {"user": "ann", "domain": "music", "threshold": "0.5"}, "must be a number"),
    ("recommend", {"user": "ann", "domain": "music", "threshold": float("nan")}, "between -1"),
    ("recommend", {"user": ["ann"], "domain": "music"}, "a user id is a string"),
    ("recommend", {"user": b"ann", "domain": "music"}, "a user id is a string"),
    ("recommend", {"history": 5, "domain": "music"}, "a history is text or a list"),
    ("recommend", {"history": b"tea", "domain": "music"}, "a history is text or a list"),
    ("recommend", {"history": [None], "domain": "music"}, "a history entry is an item id"),
    ("recommend", {"history": [("tea",)], "domain": "music"}, "a history entry is an item id"),
    ("recommend", {"domain": "music"}, "give a stored user or an ad-hoc history"),
    ("similar", {"item_id": "b1", "k": 2.0}, "k must be a whole number"),
    ("similar", {"item_id": ["b1"]}, "an item id is a string"),
    ("score", {"user": "ann", "item_ids": "m1"}, "a list of item ids, not one id"),
    ("profile", {"user": "ann", "user_vector": "bogus"}, "unknown user vector 'bogus'"),
]


@pytest.mark.parametrize(("method", "kwargs", "message"), BAD_CALLS)
def test_bad_arguments_are_input_errors(
    rec: Recommender, method: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        getattr(rec, method)(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"half_life": 0}, "half_life must be a positive number"),
        ({"mean_half_life": float("nan")}, "mean_half_life must be a positive number"),
        ({"mean_half_life": -1}, "mean_half_life must be a positive number"),
        ({"encoder": object()}, "the encoder must have what localrec.Encoder names: a `spec`"),
        ({"user_vector": "x"}, "unknown user vector 'x'"),
    ],
)
def test_bad_recommender_settings_are_input_errors(
    db: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        Recommender(db, **kwargs)
    with pytest.raises(InputError, match="db must be a path"):
        Recommender(None)  # type: ignore[arg-type]


def test_a_closed_recommender_or_store_says_so(db: Path) -> None:
    rec = Recommender(db, encoder=FakeEncoder())
    rec.close()
    rec.close()  # twice is fine
    with pytest.raises(DatabaseError, match="this database was closed"):
        rec.recommend("ann", domain="music")
    with pytest.raises(DatabaseError, match="this database was closed"):
        add_items(rec.store, [{"id": "x", "domain": "music", "title": "X"}])


def test_from_domains_may_be_one_name_and_int_ids_are_looked_up(rec: Recommender) -> None:
    one = rec.recommend("ann", domain="music", k=3, from_domains="books")
    listed = rec.recommend("ann", domain="music", k=3, from_domains=["books"])
    assert [r.item_id for r in one] == [r.item_id for r in listed] and one.history_size == 2
    with Store(rec.store.path) as store:
        add_items(store, [{"id": 7, "domain": "music", "title": "Seven"}])
        encode_items(store, FakeEncoder())
    with Recommender(rec.store.path, encoder=FakeEncoder()) as fresh:
        assert fresh.score("ann", [7])[0].item_id == "7"
        assert fresh.similar(7, domain="music", k=1)[0].item_id != "7"


def test_the_popular_fallback_leaves_out_what_the_user_has(rec: Recommender) -> None:
    # cat has m5 and m2, both music; from books alone she has no usable history.
    result = rec.recommend("cat", domain="music", k=3, from_domains=["books"])
    assert result.fallback == "popular"
    assert not {"m5", "m2"} & {r.item_id for r in result}
    kept = rec.recommend("cat", domain="music", k=3, from_domains=["books"], include_seen=True)
    assert kept.items[0].item_id == "m5"  # the most popular music item (bob and cat)
    adhoc = rec.recommend(history=["m5", "m2"], domain="music", k=3, from_domains="books")
    assert "the given history has no usable items" in adhoc.notes[0]
    assert not {"m5", "m2"} & {r.item_id for r in adhoc}


@pytest.mark.parametrize(
    ("action", "rating", "reason", "value", "shown"),
    [
        ("purchase", None, SIMILAR_TEXT, 0.2345, "bought Dune (similar text, cosine 0.23)"),
        ("rate", 5.0, SIMILAR_TEXT, 0.5, "rated Dune 5/5 (similar text, cosine 0.50)"),
        ("read", None, OTHERS_NEXT, 0.625, "read Dune (others went on to it: 62%)"),
        (
            "view",
            None,
            OTHERS_TWO_STEPS,
            1.0,
            "viewed Dune (others went on to it in two steps: 100%)",
        ),
    ],
)
def test_explanations_say_why_in_the_table(
    action: str, rating: float | None, reason: str, value: float, shown: str
) -> None:
    from localrec.cli.recommend import _because

    similar = reason == SIMILAR_TEXT
    why = Explanation(
        "b1",
        "Dune",
        action,
        reason,
        cosine=value if similar else None,
        cf_share=None if similar else value,
        text="Dune by Frank Herbert (science fiction)",
        value=rating,
    )
    assert _because(why.to_dict()) == shown
    assert why.similarity == value
