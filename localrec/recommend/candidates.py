"""The items a list may hold: one domain's encoded items, or the candidates a caller names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from localrec.errors import InputError
from localrec.recommend.history import item_id as as_item_id
from localrec.store.db import ItemMatrix

__all__ = ["candidate_pool"]


def candidate_pool(matrix: ItemMatrix, candidates: Sequence[str | int]) -> ItemMatrix:
    """The rows of `matrix` (one domain's items) that `candidates` names, in that order."""
    if isinstance(candidates, str | bytes):
        raise InputError("candidates is a list of item ids, not one id")
    if not isinstance(candidates, Iterable):
        raise InputError(f"candidates is a list of item ids, got {candidates!r:.60}")
    ids = [as_item_id(i) for i in candidates]
    if not ids:
        raise InputError("candidates is empty; give at least one item id, or none at all")
    index = matrix.index()
    missing = [i for i in ids if i not in index]
    if missing:
        raise InputError(
            f"candidate(s) not among the encoded {matrix.domain!r} items: "
            f"{', '.join(map(repr, missing[:5]))}; check the ids, or run `localrec encode`"
        )
    repeated = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) < len(ids) else []
    if repeated:
        raise InputError(f"candidates names {', '.join(map(repr, repeated[:5]))} twice")
    rows = [index[i] for i in ids]
    return ItemMatrix(
        matrix.model,
        matrix.domain,
        tuple(ids),
        tuple(matrix.domains[r] for r in rows),
        matrix.matrix[rows],
    )
