"""Why an item was recommended by text: the history items most similar to it."""

from __future__ import annotations

import numpy as np

from localrec.recommend.history import HistoryItem, UserProfile
from localrec.recommend.results import Explanation

__all__ = ["explain"]


def explain(profile: UserProfile, item_vector: np.ndarray, top: int = 3) -> tuple[Explanation, ...]:
    """The one to three history items most similar to the item, positive similarity only."""
    similarity = profile.vectors @ item_vector
    best: dict[str, tuple[float, HistoryItem]] = {}
    for i in np.argsort(-similarity, kind="stable"):
        item = profile.items[int(i)]
        key = item.item_id or item.text
        if similarity[i] <= 0 or key in best:
            continue
        best[key] = (float(similarity[i]), item)
        if len(best) == top:
            break
    return tuple(
        Explanation(
            item.item_id, item.name, item.action, cosine=sim, text=item.text, value=item.value
        )
        for sim, item in best.values()
    )
