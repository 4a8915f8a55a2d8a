"""Items and users as text: the per-domain item templates and the user-history sentence."""

from __future__ import annotations

import html
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from localrec.errors import InputError
from localrec.weighting import action_strength, recency

__all__ = [
    "RENDER_VERSION",
    "HistoryEvent",
    "action_phrase",
    "clean_text",
    "render_item",
    "user_history_text",
    "validate_template",
]

# A hard cap far above any model's token limit: it only stops a pathological field from
# costing time; truncation to the model's limit happens in the encoder, token-exact.
MAX_TEXT_CHARS = 20_000
# Raise it whenever `render_item` renders some item differently: stale-vector counts
# kept in a database are then worked out again.
RENDER_VERSION = 1
_WS = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Lone UTF-16 surrogates (a JSON "\ud800" escape): not encodable, so not storable.
SURROGATE = re.compile("[\ud800-\udfff]")

_VERBS = {
    "en": {
        "purchase": "bought",
        "rate": "rated",
        "review": "reviewed",
        "listen": "listened to",
        "wishlist": "wished for",
        "click": "clicked",
        "view": "viewed",
    },
    "zh": {
        "purchase": "购买了",
        "rate": "评价了",
        "review": "评论了",
        "listen": "听了",
        "wishlist": "想要",
        "click": "点击了",
        "view": "浏览了",
    },
}
_SEPARATORS = {"en": ("; ", ": "), "zh": ("，", "")}
LANGUAGES = tuple(_VERBS)


def clean_text(value: Any) -> str:
    """Decode HTML entities, drop control characters, collapse whitespace."""
    if value is None:
        return ""
    text = html.unescape(str(value))
    text = SURROGATE.sub("\ufffd", _CONTROL.sub(" ", text))
    return _WS.sub(" ", text).strip()[:MAX_TEXT_CHARS].rstrip()


def validate_template(template: str) -> list[str]:
    """The field names a template uses; malformed templates raise `InputError`."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise InputError(f"invalid template {template!r}: {exc}") from None
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        # No dots: format_map would read "a.b" as attribute b of field a.
        if not name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
            raise InputError(
                f"invalid template {template!r}: placeholder {{{name}}} must be a plain field name"
            )
        if spec or conversion:
            raise InputError(
                f"invalid template {template!r}: placeholder {{{name}}} cannot have a format "
                "spec or conversion (':' or '!')"
            )
    return fields


def render_item(fields: Mapping[str, Any], template: str | None = None) -> str:
    """One item as text. Without a template: the title, then 'Key: value' for other fields.

    A template such as "{title} by {artist}. Genre: {genre}" names fields; a field the item
    lacks renders empty, and the separators it leaves behind are tidied away.
    """
    values = {k: clean_text(v) for k, v in fields.items() if not isinstance(v, dict | list)}
    if template:
        names = validate_template(template)
        mapping = {name: values.get(name, "") for name in names}
        text = template.format_map(mapping)
        # Empty brackets first, so that the separators they stood behind are tidied too.
        text = re.sub(r"\(\s*\)|\[\s*\]", "", text)
        text = re.sub(r"(\s*[;,:|]\s*)+$", "", text)
        text = re.sub(r"^(\s*[;,:|]\s*)+", "", text)
        text = re.sub(r"(\s*;\s*){2,}", "; ", text)
        return clean_text(text)
    title = values.get("title", "")
    parts = [title] if title else []
    for key, value in values.items():
        if key in ("title", "id", "domain") or not value:
            continue
        label = clean_text(str(key).replace("_", " ")).capitalize()
        parts.append(f"{label}: {value}" if label else value)
    # Each part is capped, not their sum: a title at the cap and one more field went over.
    return "; ".join(parts)[:MAX_TEXT_CHARS].rstrip()


@dataclass(frozen=True)
class HistoryEvent:
    """One event of a user's history, as the text builder needs it."""

    text: str
    action: str = "purchase"
    value: float | None = None
    time: float | None = None


def event_weight(
    event: HistoryEvent,
    age_rank: int,
    half_life: float,
    weights: Mapping[str, float] | None = None,
) -> float:
    """Strength of the action (`weights`: a database's own), times its recency
    (`localrec.weighting`)."""
    strength = action_strength(event.action, event.value, weights)
    return strength * float(recency(age_rank, half_life))


def action_phrase(action: str, title: str, value: float | None = None) -> str:
    """What a user did, in words: "bought Dune", "rated The Martian 5/5"; an action word
    without a verb of its own is said as it is ("read Dune")."""
    verb = _VERBS["en"].get(action, action)
    if action == "rate" and value is not None:
        return f"{verb} {title} {value:g}/5"
    return f"{verb} {title}"


def _describe(event: HistoryEvent, lang: str) -> str:
    verb = _VERBS[lang].get(event.action, event.action)
    _, colon = _SEPARATORS[lang]
    if event.action == "rate" and event.value is not None:
        rating = f"{event.value:g}/5"
        if lang == "zh":
            return f"{verb}{event.text}（{rating}）"
        verb = f"{verb} {rating}"
    return f"{verb}{colon}{event.text}" if lang == "en" else f"{verb}{event.text}"


def user_history_text(
    events: Sequence[HistoryEvent],
    *,
    lang: str = "en",
    max_tokens: int = 256,
    count_tokens: Callable[[str], int] | None = None,
    half_life: float = 10.0,
    weights: Mapping[str, float] | None = None,
) -> str:
    """The user described in words, strongest and most recent first, within a token budget.

    `events` are oldest first. The budget is measured with `count_tokens` when given (the
    model's tokenizer), else estimated; whole events are dropped rather than cut.
    `weights` are a database's own action weights (`weighting.action_strength`).
    """
    if lang not in _VERBS:
        raise InputError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    n = len(events)
    ranked = sorted(
        range(n),
        key=lambda i: (-event_weight(events[i], n - 1 - i, half_life, weights), -(i)),
    )
    sep, _ = _SEPARATORS[lang]
    measure = count_tokens or _estimate_tokens
    pieces: list[str] = []
    seen: set[str] = set()
    for i in ranked:
        event = events[i]
        if not event.text or event.text in seen:
            continue
        piece = _describe(event, lang)
        candidate = sep.join([*pieces, piece])
        if pieces and measure(candidate) > max_tokens:
            break
        pieces.append(piece)
        seen.add(event.text)
    return sep.join(pieces)


def _estimate_tokens(text: str) -> int:
    # WordPiece averages ~1.3 tokens per English word; CJK is about one per character.
    cjk = sum(1 for ch in text if "\u3000" <= ch <= "\u9fff")
    return int(len(text.split()) * 1.3) + cjk + 2


def parse_history(text: str) -> list[HistoryEvent]:
    """Parse an ad-hoc history such as "bought a phone; rated a laptop 5/5; viewed: socks"."""
    events: list[HistoryEvent] = []
    verbs = {verb: action for action, verb in _VERBS["en"].items()}
    for raw in re.split(r"[;\n]+", text):
        part = clean_text(raw)
        if not part:
            continue
        action, value = "purchase", None
        lowered = part.lower()
        for verb, act in sorted(verbs.items(), key=lambda kv: -len(kv[0])):
            if lowered.startswith(verb + " ") or lowered.startswith(verb + ":"):
                action = act
                part = part[len(verb) :].lstrip(" :")
                break
        rating = re.search(r"\s*(\d+(?:\.\d+)?)\s*/\s*5\s*$", part)
        if rating:
            value = float(rating.group(1))
            action = "rate"
            part = part[: rating.start()].strip()
        if part:
            events.append(HistoryEvent(text=part, action=action, value=value))
    return events
