"""`forget` of a user: an unknown user has an exit code of its own and changes nothing; a
tuned adapter trained on the user's events is named in a note, or tuned again without them
(--retrain)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from localrec.recommend.forget import forget_user
from localrec.store.db import Store
from tests.helpers import assert_clean, count_sql, file_digest, invoke
from tests.packs.corpus import corpus_events, tuned_corpus


@pytest.fixture
def tuned(tmp_path_factory: pytest.TempPathFactory, pulled_home: Path, tmp_path: Path) -> Path:
    """A copy of the tuned corpus database (120 items, real vectors, a tuned adapter)."""
    db = tmp_path / "app.db"
    shutil.copy(tuned_corpus(tmp_path_factory, pulled_home), db)
    return db


def _user() -> str:
    return str(corpus_events()[0][0]["user"])


def test_an_unknown_user_exits_3_and_changes_nothing(tuned: Path) -> None:
    before = file_digest(tuned)
    result = invoke("--db", str(tuned), "forget", "nobody-at-all", "--yes", "--retrain")
    assert_clean(result, 3)
    assert result.stdout == ""
    assert "holds nothing of user 'nobody-at-all'; nothing was deleted" in result.stderr
    assert file_digest(tuned) == before
    with Store(tuned) as store:
        report = forget_user(store, "nobody-at-all")
    assert (report.found, report.rows, report.notes()) == (False, 0, [])


def test_forget_names_the_adapter_that_learned_from_the_user(tuned: Path) -> None:
    user = _user()
    result = invoke("--db", str(tuned), "forget", user, "--yes")
    assert_clean(result, 0)
    assert result.stdout.startswith("deleted ")
    assert (
        "note: the tuned adapter of all-minilm-l6-v2 was trained on this database's events "
        f"and may still carry what it learned from {user!r}'s; run `localrec tune` again"
    ) in result.stderr
    assert count_sql(tuned, f"SELECT count(*) FROM events WHERE user_id = '{user}'") == 0


def test_forget_retrain_tunes_the_adapter_again_without_the_user(
    tuned: Path, model_home: Path
) -> None:
    user = _user()
    with Store(tuned) as store:
        before = store.adapter_models()
        pairs_before = store.get_adapter("all-minilm-l6-v2", "adapter")
    assert list(before) == ["all-minilm-l6-v2"] and pairs_before is not None
    result = invoke("--db", str(tuned), "forget", user, "--yes", "--retrain")
    assert_clean(result, 0)
    assert "tuned the all-minilm-l6-v2 adapter again without" in result.stdout
    assert "note:" not in result.stderr
    with Store(tuned) as store:
        meta, _ = store.get_adapter("all-minilm-l6-v2", "adapter") or ({}, b"")
    # Same settings, fewer training pairs: the user's events are no longer in it.
    assert meta["config"] == pairs_before[0]["config"]
    assert meta["train_pairs"] < pairs_before[0]["train_pairs"]
