"""What `recommend`, `score` and `similar` return: plain dataclasses an app can use as is."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "OTHERS_NEXT",
    "OTHERS_TWO_STEPS",
    "SIMILAR_TEXT",
    "Explanation",
    "Recommendation",
    "RecommendationList",
]

# Why a history item explains a recommendation: its text is similar, or other users went
# on from it to the recommended item (directly, or in the walk's two steps).
SIMILAR_TEXT = "similar text"
OTHERS_NEXT = "others went on to it"
OTHERS_TWO_STEPS = "others went on to it in two steps"


@dataclass(frozen=True)
class Explanation:
    """A history item that pulled a recommendation up.

    Attributes:
        item_id: The history item's id; None for free text of an ad-hoc history.
        title: The history item's text, as it was embedded.
        action: What the user did with it (purchase, rate, view, ...).
        similarity: The text cosine with the recommendation, or, for the co-occurrence
            reasons, the item's share of the recommendation's CF score.
        reason: "similar text", "others went on to it" or "others went on to it in two
            steps".
    """

    item_id: str | None
    title: str
    action: str
    similarity: float
    reason: str = SIMILAR_TEXT


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
            "because_detail": [
                {
                    "item_id": e.item_id,
                    "title": e.title,
                    "action": e.action,
                    "similarity": round(e.similarity, 6),
                    "reason": e.reason,
                }
                for e in self.because
            ],
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
        """The list as JSON-able data, with how it was made; `localrec recommend --json`
        prints its `items` (each `Recommendation.to_dict`)."""
        return {
            "user": self.user,
            "domain": self.domain,
            "user_vector": self.user_vector,
            "fallback": self.fallback,
            "history_size": self.history_size,
            "notes": list(self.notes),
            "items": [r.to_dict() for r in self.items],
        }
