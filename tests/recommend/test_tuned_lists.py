"""Lists after tune: thresholds still compare cosines; explanations name what CF went through."""

from __future__ import annotations

from pathlib import Path

import pytest

from localrec.tuning.storage import store_adapter
from tests.synthetic import purchases, tuned_database


def test_a_threshold_after_tune_compares_cosines(tmp_path: Path) -> None:
    """Tuned scores are not cosines, so a threshold list is ranked by zero-shot text (and
    says so), an explicit tuned ranking refuses a threshold, and `score` stays a cosine."""
    from localrec.errors import InputError
    from localrec.recommend.recommender import Recommender
    from tests.fakes import FakeEncoder

    events: list[dict[str, object]] = [
        {"user": "u", "item": "3", "action": "purchase", "time": 1},
        {"user": "u", "item": "7", "action": "purchase", "time": 2},
    ]
    db, *_ = tuned_database(tmp_path, events)
    with Recommender(db, encoder=FakeEncoder()) as rec:
        assert rec.has_adapter()
        listed = rec.recommend("u", domain="b", k=None, threshold=0.0)
        assert (
            listed.user_vector == "zero-shot" and "a threshold compares cosines" in listed.notes[0]
        )
        assert all(0.0 <= r.score <= 1.0 for r in listed)
        zero_shot = rec.recommend("u", domain="b", k=None, threshold=0.0, user_vector="max-sim")
        assert len(listed.items) > 0 and len(zero_shot.items) > 0
        assert rec.recommend("u", domain="b", k=5).user_vector == "tuned-hybrid"
        with pytest.raises(InputError, match="the tuned adapter's scores are not cosines"):
            rec.recommend("u", domain="b", threshold=0.5, user_vector="tuned")
        with pytest.raises(InputError, match="scores are cosines"):
            rec.score("u", ["61"], user_vector="tuned")
        cosine = rec.score("u", ["61"])[0].score
        zero_shot_hybrid = rec.recommend("u", domain="b", k=None, threshold=-1.0)
        assert {r.item_id: r.score for r in zero_shot_hybrid}["61"] == pytest.approx(cosine)


def test_tuned_hybrid_explains_with_the_history_items_cf_went_through(tmp_path: Path) -> None:
    """u had 3 then 7. Others went 3 -> 64 (twice), 7 -> 71, and 7 -> 10 -> 80: 64 and 71
    are explained by the item others went on from, 80 by the walk's two steps, and an item
    CF never reaches by the most similar history text."""
    from localrec.recommend.recommender import Recommender
    from localrec.recommend.results import OTHERS_NEXT, OTHERS_TWO_STEPS, SIMILAR_TEXT
    from localrec.store.db import Store
    from tests.fakes import FakeEncoder

    sequences = [[3, 7], [3, 64], [7, 71], [3, 64], [7, 10], [10, 80]]
    events = purchases(sequences)
    db, adapter, _, _ = tuned_database(tmp_path, events, two_hop_weight=1.0)
    adapter.domains[1].hybrid_weight = {"mixed": 1.0, "cross": 1.0}
    with Store(db) as store:
        store_adapter(store, adapter)
    with Recommender(db, encoder=FakeEncoder(), user_vector="hybrid") as rec:
        got = rec.recommend("u", domain="b", k=60, include_seen=True, explain=True)
    assert got.user_vector == "tuned-hybrid"
    why = {r.item_id: r.because for r in got}
    assert [(e.item_id, e.reason, e.similarity) for e in why["64"]] == [("3", OTHERS_NEXT, 1.0)]
    assert [(e.item_id, e.reason) for e in why["71"]] == [("7", OTHERS_NEXT)]
    assert [(e.item_id, e.reason) for e in why["80"]] == [("7", OTHERS_TWO_STEPS)]
    assert why["100"] and all(e.reason == SIMILAR_TEXT for e in why["100"])
    assert got.items[0].to_dict()["because_detail"][0]["reason"] in (
        SIMILAR_TEXT,
        OTHERS_NEXT,
        OTHERS_TWO_STEPS,
    )


@pytest.mark.parametrize(
    ("copies", "shown"),
    [
        # 3 -> 64 in 10 sequences, 7 -> 64 in one; u had 3 (recency 0.8) then 7 (1), and
        # sim(h, 64) = pairs / count(h) ** 0.2: shares 8/11**0.2 : 1/2**0.2 = 85.0% : 15.0%.
        (10, ["3", "7"]),
        # In 60: 7's share is 4.0%, below MIN_REASON_SHARE, so only 3 is named.
        (60, ["3"]),
    ],
)
def test_a_sliver_of_the_cf_score_is_no_reason(
    tmp_path: Path, copies: int, shown: list[str]
) -> None:
    from localrec.recommend.recommender import Recommender
    from localrec.store.db import Store
    from tests.fakes import FakeEncoder

    sequences = [[3, 7], [7, 64], *([[3, 64]] * copies)]
    events = purchases(sequences)
    db, adapter, _, _ = tuned_database(tmp_path, events)
    adapter.domains[1].hybrid_weight = {"mixed": 1.0, "cross": 1.0}
    with Store(db) as store:
        store_adapter(store, adapter)
    with Recommender(db, encoder=FakeEncoder(), user_vector="hybrid") as rec:
        got = rec.recommend("u", domain="b", k=60, include_seen=True, explain=True)
    because = {r.item_id: r.because for r in got}["64"]
    assert [e.item_id for e in because] == shown
    share_7 = (1 / 2**0.2) / (0.8 * copies / (copies + 1) ** 0.2 + 1 / 2**0.2)
    if len(shown) == 2:
        assert because[1].similarity == pytest.approx(share_7)
