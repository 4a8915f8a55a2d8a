"""A seeded uniform sample of training users, so that `tune` holds a bounded share of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from localrec.errors import InputError

__all__ = ["UserSample", "check_sample_size", "sample_rows"]


@dataclass(frozen=True)
class UserSample:
    """Which share of the training users a sample is: `users` of `of`, drawn with `seed`."""

    users: int
    of: int
    seed: int


def check_sample_size(n: int) -> None:
    """Refuse a sample size below 1 before anything is read."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise InputError(
            f"--sample-users {n!r}: a sample needs at least 1 user; give a positive number, "
            "or leave the option out to train on every user"
        )


def sample_rows(total: int, n: int, seed: int, where: str) -> np.ndarray:
    """`n` of the rows 0..total-1, uniformly without replacement, ascending: the same rows
    for the same `total`, `n` and `seed`. Every row when `n` equals `total`."""
    check_sample_size(n)
    if n > total:
        raise InputError(
            f"--sample-users {n}: {where} has only {total} training users; ask for at most "
            f"{total}, or leave the option out to train on every user"
        )
    rows: np.ndarray = np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
    return rows
