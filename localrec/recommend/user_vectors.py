"""The names of the ways a user becomes scores, as `Recommender` and the CLI accept them."""

from __future__ import annotations

from typing import Literal, get_args

from localrec.errors import InputError
from localrec.scoring.profiles import USER_VECTORS

__all__ = ["UserVector", "check_user_vector", "zero_shot_method"]

# How a user becomes scores: a zero-shot representation, or the tuned adapter alone.
# "hybrid" (the default) is the tuned hybrid in a domain `tune` kept an adapter for, and
# zero-shot text elsewhere; "tuned" the adapter alone; the rest are zero-shot (USER_VECTORS).
UserVector = Literal["hybrid", "zero-shot", "history-text", "item-mean", "max-sim", "tuned"]
_USER_VECTORS: tuple[str, ...] = get_args(UserVector)
assert ("hybrid", *USER_VECTORS, "tuned") == _USER_VECTORS


def check_user_vector(method: str) -> None:
    if method not in _USER_VECTORS:
        raise InputError(
            f"unknown user vector {method!r}; choose one of {', '.join(_USER_VECTORS)}"
        )


def zero_shot_method(method: str) -> str:
    """The zero-shot representation that scores for `method` where no adapter does: the
    default "hybrid" falls back to "zero-shot"; the others are their own."""
    return "zero-shot" if method == "hybrid" else method
