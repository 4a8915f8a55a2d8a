"""The weights tune chooses on validation: the walk, the rare weight, the keep rule."""

from __future__ import annotations

import numpy as np
import pytest

from localrec.scoring.adapter import AdapterConfig
from localrec.scoring.hybrid import combine_cf
from localrec.tuning.selection import Validation, _best_rare_weight, _Blend, _not_better
from tests.synthetic import synthetic


def _blend(tuned: list[float], knn: list[float], rare: list[bool], first: int) -> _Blend:
    flags = np.array([rare])
    scores = np.array([knn])
    cands = np.arange(first, first + 4)[None, :]
    return _Blend(np.array([tuned]), scores, np.zeros_like(scores), cands, flags, flags[:, 0])


@pytest.mark.parametrize(
    ("knn", "two_hop", "expected"),
    [
        # item-kNN has no evidence for the target (column 0); the walk ranks it first.
        # z(kNN) of the target -0.58 against 1.73, z(walk) 1.70 against -0.73: w > 0.95.
        ([0.0, 0.0, 1.0, 0.0], [5.0, 1.0, 0.0, 0.0], 1.0),
        # item-kNN already ranks it first: the walk, which ranks it last, gets no weight.
        ([1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 2.0, 3.0], 0.0),
    ],
)
def test_two_hop_weight_is_chosen_on_collaborative_filtering_alone(
    knn: list[float], two_hop: list[float], expected: float
) -> None:
    dataset, vectors = synthetic()
    valid = Validation(dataset, vectors, AdapterConfig(), {}, {}, np.zeros(120))
    blend = _Blend(
        np.zeros((1, 4)),
        np.array([knn]),
        np.array([two_hop]),
        np.arange(4)[None, :],
        np.zeros((1, 4), bool),
        np.zeros(1, bool),
    )
    assert blend.choose_two_hop(valid) == expected
    # The smallest weight that ranks the target first wins; `cf` is the blend with it.
    np.testing.assert_allclose(blend.cf, combine_cf(blend.knn, blend.two_hop, expected))
    assert (blend.cf[0, 0] > blend.cf[0, 1:]).all()


@pytest.mark.parametrize(
    ("rare_case", "expected"),
    [
        # item-kNN ranks the rare target first, the adapter last: the smallest weight
        # that lifts it above the adapter's favourite (z: -1.34 + 1.73 w > 1.20) is 1.5.
        ((0.0, 3.0, 2.0, 1.0), 1.5),
        # The adapter already ranks it first: no weight of its own is needed.
        ((3.0, 0.0, 1.0, 2.0), None),
    ],
)
def test_rare_weight_is_the_best_that_keeps_rare_targets_up_with_item_knn(
    rare_case: tuple[float, ...], expected: float | None
) -> None:
    dataset, vectors = synthetic()
    valid = Validation(dataset, vectors, AdapterConfig(), {}, {}, np.zeros(120))
    popular = _blend([3, 2, 1, 0], [1, 0, 0, 0], [False] * 4, 0)
    rare = _blend(list(rare_case), [10, 0, 0, 0], [True, False, False, False], 4)
    blends = {"mixed": popular, "cross": rare}
    weights = {"mixed": 0.25, "cross": 0.25}
    assert _best_rare_weight(blends, weights, valid) == expected
    # Without a rarely seen target there is nothing to choose by.
    assert _best_rare_weight({"mixed": popular}, weights, valid) is None


@pytest.mark.parametrize(
    ("gains", "kept"),
    [
        (np.full(40, 0.2), True),  # a clear lead on every case
        (np.array([0.5, -0.4, 0.3, -0.35, 0.1, -0.1]), False),  # mean 0.008, SE 0.15
        (np.array([-0.2, 0.1, 0.0]), False),  # worse on the mean
    ],
)
def test_a_lead_within_noise_is_not_kept(gains: np.ndarray, kept: bool) -> None:
    from localrec.scoring.adapter import DomainAdapter

    zero = np.zeros((2, 2), np.float32)
    adapter = DomainAdapter(1, zero, zero, zero, zero, np.zeros(2, np.float32))
    adapter.hybrid_ndcg, adapter.zero_shot_ndcg = {"mixed": 0.3}, {"mixed": 0.3 - gains.mean()}
    why = _not_better(gains, adapter)
    assert (why is None) is kept
    if gains.mean() > 0 and not kept:
        assert why is not None and f"a lead within noise on {len(gains)} validation cases" in why
