"""Items and users as text."""

from __future__ import annotations

import pytest

from localrec.errors import InputError
from localrec.text import HistoryEvent, clean_text, parse_history, render_item, user_history_text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Tea &amp; Biscuits", "Tea & Biscuits"),
        ("  many\t\tspaces\n\nand lines ", "many spaces and lines"),
        ("nul\x00byte", "nul byte"),
        (None, ""),
        (42, "42"),
    ],
)
def test_clean_text(raw: object, clean: str) -> None:
    assert clean_text(raw) == clean


def test_default_rendering_is_title_then_fields() -> None:
    text = render_item({"title": "Kind of Blue", "artist": "Miles Davis", "genre": "jazz"})
    assert text == "Kind of Blue; Artist: Miles Davis; Genre: jazz"
    assert render_item({"title": "Just a title"}) == "Just a title"


def test_templates_fill_fields_and_tidy_missing_ones() -> None:
    template = "{title} by {artist} ({genre})"
    assert render_item({"title": "Kind of Blue", "artist": "Miles", "genre": "jazz"}, template) == (
        "Kind of Blue by Miles (jazz)"
    )
    assert (
        render_item({"title": "Kind of Blue", "artist": "Miles"}, template)
        == "Kind of Blue by Miles"
    )


@pytest.mark.parametrize("template", ["{title", "{0}", "{title.__class__}x{", "{a b}"])
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(InputError, match="invalid template"):
        render_item({"title": "x"}, template)


def test_long_fields_are_not_cut_before_the_model_limit() -> None:
    long = "word " * 2000
    assert len(render_item({"title": long})) == len(long.strip())


EVENTS = [
    HistoryEvent("Bose QuietComfort headphones", "view"),
    HistoryEvent("The Three-Body Problem", "rate", 5),
    HistoryEvent("Kind of Blue", "listen"),
    HistoryEvent("Cast iron skillet", "purchase"),
]


def test_history_text_strongest_and_most_recent_first() -> None:
    text = user_history_text(EVENTS)
    assert text.split("; ") == [
        "bought: Cast iron skillet",
        "rated 5/5: The Three-Body Problem",
        "listened to: Kind of Blue",
        "viewed: Bose QuietComfort headphones",
    ]


def test_history_text_in_chinese() -> None:
    text = user_history_text(EVENTS, lang="zh")
    assert text.startswith("购买了Cast iron skillet，评价了The Three-Body Problem（5/5）")


def test_history_text_fits_the_token_budget() -> None:
    many = [HistoryEvent(f"product number {n} with a long name", "purchase") for n in range(500)]
    text = user_history_text(many, max_tokens=60, count_tokens=lambda s: len(s.split()))
    assert 0 < len(text.split()) <= 60
    assert text.startswith("bought: product number 499")  # the most recent survives


def test_unknown_language() -> None:
    with pytest.raises(InputError, match="choose one of en, zh"):
        user_history_text(EVENTS, lang="fr")


def test_parse_ad_hoc_history() -> None:
    events = parse_history("bought a phone; rated a laptop 5/5; viewed: socks\nnoise cancelling")
    assert [(e.text, e.action, e.value) for e in events] == [
        ("a phone", "purchase", None),
        ("a laptop", "rate", 5.0),
        ("socks", "view", None),
        ("noise cancelling", "purchase", None),
    ]
