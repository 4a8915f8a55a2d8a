"""How much each event of a history counts: its action's strength and its recency.

One definition of each, used by the history text, the zero-shot profiles, the adapter's
user vector, its training pairs and item-kNN.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "ACTION_STRENGTH",
    "ACTION_WORD",
    "MAX_ACTION_STRENGTH",
    "UNKNOWN_ACTION_STRENGTH",
    "action_strength",
    "ages",
    "per_event_decay",
    "recency",
]

# What an action is: a short lowercase word (purchase, rate, read, ...).
ACTION_WORD = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# How much an action says about what the user likes; purchase > rate > view.
ACTION_STRENGTH: dict[str, float] = {
    "purchase": 1.0,
    "rate": 0.9,
    "review": 0.9,
    "listen": 0.7,
    "wishlist": 0.6,
    "click": 0.4,
    "view": 0.3,
}
# An action word not in the table (say "read") counts this much, unless a database sets
# its own weight (`localrec config set action.read 0.8`).
UNKNOWN_ACTION_STRENGTH = 0.5
# The range a database's own action weight may take (purchase, the strongest here, is 1).
MAX_ACTION_STRENGTH = 10.0


def action_strength(
    action: str, value: float | None = None, weights: Mapping[str, float] | None = None
) -> float:
    """The action's strength (`weights` first: a database's own, from its `action.WORD`
    configuration, then the table); a rating scales it by its value (1/5: x0.6, 5/5:
    x1.0)."""
    strength = weights.get(action) if weights else None
    if strength is None:
        strength = ACTION_STRENGTH.get(action, UNKNOWN_ACTION_STRENGTH)
    if action == "rate" and value is not None:
        # A 1/5 rating is a weak signal of taste, a 5/5 a strong one.
        strength *= 0.5 + min(max(value, 0.0), 5.0) / 10
    return strength


def ages(n: int) -> np.ndarray:
    """How many events ago each of n events (oldest first) was: n-1, ..., 1, 0."""
    out: np.ndarray = np.arange(n - 1, -1, -1)
    return out


def recency(event_ages: np.ndarray | Sequence[int] | int, half_life: float) -> np.ndarray:
    """0.5 ** (age / half_life): an event half_life events before the newest counts half."""
    out: np.ndarray = np.power(0.5, np.asarray(event_ages, dtype=np.float64) / half_life)
    return out


def per_event_decay(event_ages: np.ndarray, decay: float) -> np.ndarray:
    """decay ** age: the same exponential recency, given per event (item-kNN's 0.8 is a
    half-life of 3.1 events) rather than as a half-life."""
    out: np.ndarray = decay ** np.asarray(event_ages, dtype=np.float64)
    return out
