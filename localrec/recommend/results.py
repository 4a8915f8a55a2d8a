"""What `recommend`, `score` and `similar` return: plain dataclasses an app can use as is."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "OTHERS_HAD_BOTH",
    "OTHERS_NEXT",
    "OTHERS_TWO_STEPS",
    "SIMILAR_TEXT",
    "Explanation",
    "Recommendation",
    "RecommendationList",
]

# Why a history item explains a recommendation: its text is similar, or other users went
# on from it to the recommended item (directly, or in the walk's two steps), or had both.
SIMILAR_TEXT = "similar text"
OTHERS_NEXT = "others went on to it"
OTHERS_TWO_STEPS = "others went on to it in two steps"
OTHERS_HAD_BOTH = "others had both"


@dataclass(frozen=True)
class Explanation:
    """A history item that pulled a recommendation up.

    Attributes:
        item_id: The history item's id; None for free text of an ad-hoc history.
        title: The item's title (for a free-text history entry, that text).
        action: What the user did with it ("purchase", "rate", "view", ...).
        reason: "similar text", "others went on to it" or "others went on to it in two
            steps".
        cosine: For text similarity, the cosine of the two items' vectors; else None.
        cf_share: For collaborative filtering, the history item's share of the
            recommendation's CF score (0-1); else None.
        text: What the model read of the item (rendered with its domain's template).
        value: The value of the action (5.0 for "rated 5/5"), if any.
    """

    item_id: str | None
    title: str
    action: str
    reason: str = SIMILAR_TEXT
    cosine: float | None = None
    cf_share: float | None = None
    text: str = ""
    value: float | None = None

    @property
    def similarity(self) -> float:
        """`cosine` or `cf_share`, whichever this reason has (kept for callers of 0.1)."""
        found = self.cosine if self.cosine is not None else self.cf_share
        return float(found) if found is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "text": self.text,
            "action": self.action,
            "value": self.value,
            "reason": self.reason,
            "cosine": None if self.cosine is None else round(self.cosine, 6),
            "cf_share": None if self.cf_share is None else round(self.cf_share, 6),
            "similarity": round(self.similarity, 6),
        }


@dataclass(frozen=True)
class Recommendation:
    """One recommended (or scored) item.

    Attributes:
        item_id: The item's id.
        domain: The item's domain.
        title: The item's title.
        score: Its score: a cosine s(u, p) for zero-shot lists, `score` and `similar`; a
            sum of standardised scores (not a cosine) for the tuned hybrid.
        because: The history items behind it, strongest first (with `explain=True`).
    """

    item_id: str
    domain: str
    title: str
    score: float
    because: tuple[Explanation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The item as JSON-able data, as `localrec recommend --json` prints it."""
        return {
            "item_id": self.item_id,
            "domain": self.domain,
            "title": self.title,
            "score": round(float(self.score), 6),
            "because": [e.item_id if e.item_id is not None else e.title for e in self.because],
            "because_detail": [e.to_dict() for e in self.because],
        }


@dataclass(frozen=True)
class RecommendationList:
    """A user's list for one domain; iterate over it (or its `items`) for the items.

    Attributes:
        user: The stored user's id; None for an ad-hoc history.
        domain: The domain whose items were ranked.
        user_vector: What ranked them: "tuned-hybrid", "tuned", or a zero-shot user vector.
        items: The recommendations, best first.
        fallback: "popular" when the user had no usable history and the list is the
            domain's most popular items; None for a personal list.
        history_size: How many history items the user vector was built from.
        notes: What the caller should know (a threshold served by zero-shot text, items
            left out for missing or damaged vectors, a pack of another model).
    """

    user: str | None
    domain: str
    user_vector: str
    items: list[Recommendation]
    fallback: str | None = None
    history_size: int = 0
    notes: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Recommendation]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def to_dict(self) -> dict[str, Any]:
        """The list as JSON-able data, with how it was made: what `localrec recommend
        --json` prints. `fallback` is "popular" when the items are not personal (the
        user has no usable history) and None otherwise; `notes` are what the CLI says on
        stderr."""
        return {
            "user": self.user,
            "domain": self.domain,
            "user_vector": self.user_vector,
            "fallback": self.fallback,
            "history_size": self.history_size,
            "notes": list(self.notes),
            "items": [r.to_dict() for r in self.items],
        }
