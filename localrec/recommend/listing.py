"""Turning scored rows into `Recommendation`s: titles, scores and reasons; and the
popular-items fallback of a user with no usable history."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from localrec.recommend.catalogue import Catalogue
from localrec.recommend.explain import explain
from localrec.recommend.history import UserProfile
from localrec.recommend.results import Explanation, Recommendation
from localrec.scoring.select import select
from localrec.store.db import ItemMatrix

__all__ = ["listed", "popular_items"]


def popular_items(
    catalogue: Catalogue, matrix: ItemMatrix, k: int, owned: set[str | None] | None = None
) -> list[Recommendation]:
    """The `k` most popular items of `matrix` but those `owned`, at score 0."""
    popularity = catalogue.popularity(matrix)
    if owned:
        popularity[[r for r, i in enumerate(matrix.ids) if i in owned]] = -np.inf
    rows = select(popularity, k, None)
    titles = catalogue.get_items([matrix.ids[r] for r in rows])
    return [
        Recommendation(matrix.ids[r], matrix.domains[r], titles[matrix.ids[r]].title, 0.0)
        for r in rows
    ]


def listed(
    catalogue: Catalogue,
    matrix: ItemMatrix,
    rows: np.ndarray,
    scores: np.ndarray,
    profile: UserProfile | None,
    reasons: Callable[[int], tuple[Explanation, ...]] | None = None,
) -> list[Recommendation]:
    """Recommendations of these rows; with a profile, explained by `reasons` where it has
    any, else by the most similar history items."""
    ids = [matrix.ids[r] for r in rows]
    titles = catalogue.get_items(ids)
    out = []
    for r, item_id in zip(rows.tolist(), ids, strict=True):
        because: tuple[Explanation, ...] = ()
        if profile is not None:
            because = reasons(r) if reasons is not None else ()
            because = because or explain(profile, matrix.matrix[r])
        row = titles.get(item_id)
        out.append(
            Recommendation(
                item_id, matrix.domains[r], row.title if row else item_id, float(scores[r]), because
            )
        )
    return out
