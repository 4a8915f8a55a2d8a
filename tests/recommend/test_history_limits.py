"""An ad-hoc history is bounded (characters and events, in Python and on the command line)
and each distinct phrase of it is embedded once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localrec.errors import InputError
from localrec.recommend.history import MAX_HISTORY_CHARS, MAX_HISTORY_EVENTS
from localrec.recommend.recommender import Recommender
from tests.helpers import assert_clean, catalogue_db, invoke


class CountingEncoder:
    """The real encoder, with every text it is asked to embed written down."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.texts: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        self.texts.extend(texts)
        out: np.ndarray = self.inner.encode(texts, query=query)
        return out


@pytest.fixture
def db(tmp_path: Path, model_home: Path, encoder: Any) -> Path:
    return catalogue_db(tmp_path / "app.db", encoder=encoder)


def test_each_distinct_phrase_is_embedded_once(db: Path, encoder: Any) -> None:
    counting = CountingEncoder(encoder)
    history = "; ".join(["bought wool socks"] * 400 + ["rated green tea 5/5"] * 300)
    with Recommender(db, encoder=counting) as rec:
        got = rec.recommend(history=history, domain="kitchen", k=5, user_vector="item-mean")
    assert len(got) == 5 and got.history_size == 700
    assert sorted(counting.texts) == ["green tea", "wool socks"]


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ("x" * (MAX_HISTORY_CHARS + 1), "200,001 characters, more than the 200,000"),
        ("; ".join(f"item {i}" for i in range(MAX_HISTORY_EVENTS + 1)), "1,001 or more events"),
        (["socks"] * (MAX_HISTORY_EVENTS + 1), "1,001 or more events"),
        (["y" * 150_000, ("z" * 60_000, "view")], "210,000 characters"),
    ],
)
def test_a_history_over_the_limits_is_refused(db: Path, history: Any, message: str) -> None:
    with Recommender(db) as rec, pytest.raises(InputError, match=message) as caught:
        rec.recommend(history=history, domain="kitchen", k=5)
    assert "`add events`" in str(caught.value)


def test_the_cli_refuses_a_history_over_the_limit_in_one_line(db: Path) -> None:
    history = "; ".join(f"item {i}" for i in range(MAX_HISTORY_EVENTS + 1))
    result = invoke("--db", str(db), "recommend", "--history", history, "--domain", "kitchen")
    assert_clean(result, 1)
    assert result.stderr.startswith("Error: the history has 1,001 or more events")
    assert len(result.stderr.strip().splitlines()) == 1
