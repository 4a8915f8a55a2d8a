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
    """A history item that pulled a recommendation up. `similarity` is the text cosine, or,
    for the co-occurrence reasons, the item's share of the recommendation's CF score."""

    item_id: str | None
    title: str
    action: str
    similarity: float
    reason: str = SIMILAR_TEXT


@dataclass(frozen=True)
class Recommendation:
    """One recommended (or scored) item."""

    item_id: str
    domain: str
    title: str
    score: float
    because: tuple[Explanation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
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
    """A user's list for one domain; `fallback` says when it is not personal."""

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
