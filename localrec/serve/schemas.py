"""The JSON the server reads and writes, with every bound a request must keep.

Requests are strict (no extra fields, no "5" for 5, no true for 1) so that a typo in a
field name is an error naming it, not a silently ignored option. The answers mirror the
library's `to_dict()` (`localrec recommend --json` prints the same `items`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from localrec.recommend.recommender import UserVector

__all__ = [
    "FIELD_NAMES",
    "MAX_BODY_BYTES",
    "MAX_CANDIDATES",
    "MAX_EVENTS",
    "MAX_HISTORY",
    "MAX_K",
    "MAX_SCORED",
    "EventIn",
    "ForgetOut",
    "ForgetRequest",
    "HealthOut",
    "HistoryPair",
    "ListOut",
    "RecommendRequest",
    "RecordOut",
    "RecordRequest",
    "ScoreRequest",
    "ScoredOut",
    "SimilarRequest",
    "UsersOut",
]

MAX_BODY_BYTES = 1 << 20  # a request body: 1 MiB
MAX_K = 100  # items in one list
MAX_HISTORY = 100  # events of an ad-hoc history (a text's parts, or list entries)
MAX_HISTORY_CHARS = 20_000  # an ad-hoc history written as one text
MAX_TEXT = 2_000  # one history entry, or one review
MAX_CANDIDATES = 10_000  # candidates= of one list
MAX_SCORED = 1_000  # items scored in one request
MAX_EVENTS = 1_000  # events recorded in one request (one transaction)
MAX_FROM = 50  # domains in from
MAX_ID = 512  # an id, as `localrec add` allows

# No control characters, and not blank.
_ID_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
Identifier = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID, pattern=_ID_PATTERN)]
ItemId = Annotated[
    StrictStr | StrictInt,
    Field(description="An item id (an integer id is the same item as its decimal text)."),
]
Action = Annotated[
    StrictStr,
    Field(
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        description="A short lowercase word: purchase, rate, review, listen, wishlist, view, …",
    ),
]
Text = Annotated[StrictStr, Field(min_length=1, max_length=MAX_TEXT)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class HistoryPair(Strict):
    """One event of an ad-hoc history: an item id of the catalogue, or free text."""

    item: Text
    action: Action = "purchase"


HistoryEntry = Annotated[Text | HistoryPair, Field(union_mode="left_to_right")]
History = Annotated[
    Annotated[StrictStr, Field(min_length=1, max_length=MAX_HISTORY_CHARS)]
    | Annotated[list[HistoryEntry], Field(min_length=1, max_length=MAX_HISTORY)],
    Field(
        description=(
            'Free text ("bought a phone; rated a laptop 5/5"), or a list of item ids, texts '
            'and {"item": ..., "action": ...} objects; at most '
            f"{MAX_HISTORY} events. Stored nowhere."
        )
    ),
]


class Target(Strict):
    """Whom a list is for: a stored `user`, or an ad-hoc `history` (one of them)."""

    user: Identifier | None = None
    history: History | None = None
    from_: Annotated[list[Identifier], Field(max_length=MAX_FROM)] | None = Field(
        None, alias="from", description="Use only history from these domains."
    )
    user_vector: UserVector | None = Field(
        None, description="How the user is scored (default: hybrid)."
    )


class RecommendRequest(Target):
    domain: Identifier
    k: int = Field(10, ge=1, le=MAX_K)
    threshold: float | None = Field(None, ge=-1.0, le=1.0, allow_inf_nan=False)
    explain: bool = False
    include_seen: bool = False
    fallback: bool = True
    candidates: Annotated[list[ItemId], Field(min_length=1, max_length=MAX_CANDIDATES)] | None = (
        None
    )


class ScoreRequest(Target):
    items: Annotated[list[ItemId], Field(min_length=1, max_length=MAX_SCORED)]


class SimilarRequest(Strict):
    item: ItemId
    domain: Identifier | None = None
    k: int = Field(10, ge=1, le=MAX_K)


class EventIn(Strict):
    user: Identifier
    item: ItemId
    action: Action = "purchase"
    value: float | None = Field(None, allow_inf_nan=False, description="A rating or weight.")
    time: float | Annotated[StrictStr, Field(max_length=64)] | None = Field(
        None, description="Unix seconds or ISO 8601; now when left out."
    )
    review: Annotated[StrictStr, Field(max_length=MAX_TEXT)] | None = None

    def as_record(self) -> dict[str, Any]:
        """The record `localrec.add_events` reads (`localrec add events` reads the same)."""
        return self.model_dump(exclude_none=True)


class RecordRequest(Strict):
    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_EVENTS)]


class ForgetRequest(Strict):
    user: Identifier


# -- answers ---------------------------------------------------------------------------------


class ExplanationOut(BaseModel):
    """`Explanation.to_dict()`: `cosine` for similar text, `cf_share` for collaborative
    filtering (the other is null); `similarity` is whichever of the two this reason has."""

    item_id: str | None
    title: str
    text: str
    action: str
    value: float | None
    reason: str
    cosine: float | None
    cf_share: float | None
    similarity: float


class RecommendationOut(BaseModel):
    item_id: str
    domain: str
    title: str
    score: float
    because: list[str]
    because_detail: list[ExplanationOut]


class ListOut(BaseModel):
    """`RecommendationList.to_dict()`."""

    user: str | None
    domain: str
    user_vector: str
    fallback: str | None
    history_size: int
    notes: list[str]
    items: list[RecommendationOut]


class ScoredOut(BaseModel):
    notes: list[str]
    items: list[RecommendationOut]


class RecordOut(BaseModel):
    stored: int


class ForgetOut(BaseModel):
    user: str
    deleted: int


class UserOut(BaseModel):
    user: str
    events: int


class UsersOut(BaseModel):
    users: list[UserOut]


def _field_names(*models: type[BaseModel]) -> frozenset[str]:
    names: set[str] = set()
    for model in models:
        for name, info in model.model_fields.items():
            names.add(info.alias or name)
    return frozenset(names)


# What a 422 may name: the request models' fields (pydantic's locations also name the
# branches of a union it tried, such as "float" or "constrained-str").
FIELD_NAMES = _field_names(
    RecommendRequest,
    ScoreRequest,
    SimilarRequest,
    RecordRequest,
    EventIn,
    ForgetRequest,
    HistoryPair,
) | {"limit"}


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str
    model: str
    pack: str | None
    db: str
    domains: list[str]
    adapter: bool
    token_for: Literal["writes", "everything"]
