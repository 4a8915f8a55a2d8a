"""A user's history as `recommend` gathers it: events with their text and vectors."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from localrec.errors import InputError
from localrec.scoring.history import FREE_TEXT, History
from localrec.scoring.profiles import MEAN_HALF_LIFE, mean_vector, mean_weights, profile_scores
from localrec.text import HistoryEvent, parse_history
from localrec.weighting import action_strength

__all__ = [
    "MAX_HISTORY_CHARS",
    "MAX_HISTORY_EVENTS",
    "AdHoc",
    "HistoryItem",
    "UserProfile",
    "ad_hoc_events",
    "domain_list",
    "item_id",
]

# The limits of an ad-hoc history (`--history`, `recommend(history=...)`): its text (or
# the texts of its entries together) and its events. Each distinct phrase is embedded, so
# the limits bound a call's time (benchmarks/bench_history.py measures it at the limit).
# A longer history belongs in the database: `add events`, then recommend for that user.
MAX_HISTORY_CHARS = 200_000
MAX_HISTORY_EVENTS = 1_000

# An ad-hoc history: free text ("bought a phone; rated a laptop 5/5"), item ids or texts,
# or (item id or text, action) pairs.
AdHoc = Sequence[tuple[str, str]] | Sequence[str] | str


@dataclass(frozen=True)
class HistoryItem:
    """One event of a history: a catalogue item (item_id set) or free text (ad-hoc users).
    `text` is what the model reads (the item rendered), `title` the item's title (the
    text itself for free text)."""

    text: str
    action: str = "purchase"
    value: float | None = None
    item_id: str | None = None
    domain: str | None = None
    title: str = ""

    @property
    def name(self) -> str:
        """How a person knows the item: its title, else the text."""
        return self.title or self.text


@dataclass
class UserProfile:
    """A history with one vector per item, each event's action strength, and the weights
    of the item-mean."""

    items: list[HistoryItem]
    vectors: np.ndarray
    weights: np.ndarray
    text_vector: np.ndarray | None = None
    strengths: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        items: list[HistoryItem],
        vectors: np.ndarray,
        mean_half_life: float = MEAN_HALF_LIFE,
        action_weights: Mapping[str, float] | None = None,
    ) -> UserProfile:
        """`action_weights`: the database's own weights of action words (`action.WORD`)."""
        strength = strengths(items, action_weights)
        return cls(items, vectors, mean_weights(strength, mean_half_life), strengths=strength)

    @property
    def empty(self) -> bool:
        return not self.items

    def mean_vector(self) -> np.ndarray:
        """The item-mean user vector (unit length)."""
        return mean_vector(self.vectors, self.weights)

    def scores(self, method: str, matrix: np.ndarray) -> np.ndarray:
        """The zero-shot s(u, p) of every row of `matrix` (`profile_scores`)."""
        return profile_scores(method, self.vectors, self.weights, matrix, self.text_vector)

    def history(self, index: dict[str, int]) -> History:
        """The history as the scoring core reads it: rows of the catalogue `index`; events
        it does not hold (free text, items without a vector) bring their own vectors."""
        rows = np.array(
            [index.get(i.item_id, FREE_TEXT) if i.item_id else FREE_TEXT for i in self.items],
            dtype=np.int64,
        )
        free = self.vectors[rows == FREE_TEXT] if (rows == FREE_TEXT).any() else None
        strength = self.strengths if self.strengths is not None else strengths(self.items)
        return History(rows, strength, free)


def strengths(
    items: Sequence[HistoryItem], weights: Mapping[str, float] | None = None
) -> np.ndarray:
    """Each event's action strength (`weighting.action_strength`; `weights` are the
    database's own)."""
    return np.array([action_strength(i.action, i.value, weights) for i in items], dtype=np.float64)


def ad_hoc_events(history: AdHoc) -> list[HistoryEvent]:
    """An ad-hoc history's events, checked: text is parsed, entries must be ids or pairs,
    and it stays within MAX_HISTORY_CHARS and MAX_HISTORY_EVENTS."""
    if isinstance(history, str):
        _check_size(len(history), None)
        return _check_size(0, parse_history(history))
    if isinstance(history, bytes) or not isinstance(history, Iterable):
        raise InputError(
            f"a history is text or a list of item ids / (item or text, action) pairs, "
            f"got {history!r:.60}"
        )
    events = []
    chars = 0
    for entry in history:
        if isinstance(entry, str):
            text, action = entry, "purchase"
        elif (
            isinstance(entry, tuple | list)
            and len(entry) == 2
            and all(isinstance(x, str) for x in entry)
        ):
            text, action = entry
        else:
            raise InputError(
                f"a history entry is an item id or text, or an (item or text, action) "
                f"pair of strings, got {entry!r:.60}"
            )
        events.append(HistoryEvent(text=text, action=action))
        chars += len(text)
        _check_size(chars, events)
    return events


def _check_size(chars: int, events: list[HistoryEvent] | None) -> list[HistoryEvent]:
    fix = "store the events with `add events` and recommend for that user, or shorten it"
    if chars > MAX_HISTORY_CHARS:
        raise InputError(
            f"the history has {chars:,} characters, more than the {MAX_HISTORY_CHARS:,} an "
            f"ad-hoc history may have; {fix}"
        )
    if events is not None and len(events) > MAX_HISTORY_EVENTS:
        raise InputError(
            f"the history has {len(events):,} or more events, more than the "
            f"{MAX_HISTORY_EVENTS:,} an ad-hoc history may have; {fix}"
        )
    return events or []


def item_id(value: object) -> str:
    """An item id as stored: add_items stores integer ids as their decimal text."""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    raise InputError(f"an item id is a string (or an integer), got {value!r:.60}")


def domain_list(from_domains: Sequence[str] | str | None) -> list[str] | None:
    """--from's domains; one name alone is one domain, not its characters."""
    if from_domains is None:
        return None
    if not isinstance(from_domains, str | Iterable):
        raise InputError(f"from_domains is a list of domain names, got {from_domains!r:.60}")
    names = [from_domains] if isinstance(from_domains, str) else list(from_domains)
    for name in names:
        if not isinstance(name, str):
            raise InputError(f"from_domains must hold domain names, got {name!r}")
    return names
