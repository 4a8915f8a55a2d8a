"""Item text and history text from hostile input: a template is either refused with a clear
error or renders exactly its fields, item text has no control characters whatever the
fields hold, and any history becomes text within its budget."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localrec.errors import InputError
from localrec.text import (
    MAX_TEXT_CHARS,
    HistoryEvent,
    clean_text,
    render_item,
    user_history_text,
    validate_template,
)
from tests.helpers import FUZZ_RUNS, HUGE, JSON_VALUE, SQLISH, TEXT, fuzz, fuzz_report

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SEPARATOR = ";,:|"  # what render_item tidies away where a missing field leaves it dangling

# -- templates built to be valid, or broken in one known place -------------------------------

# A placeholder validate_template accepts: a plain field name.
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)
# Literal template text: words, the separators and brackets render_item tidies, and escaped
# braces. No '&' (render_item decodes HTML entities) and no lone brace.
LITERAL = st.one_of(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ]{0,10}", fullmatch=True),
    st.sampled_from(["; ", ", ", ": ", " | ", " - ", ". ", " by ", " ", "{{", "}}", "{{x}}"]),
    st.sampled_from(["(", ")", "[", "]", " (", ") "]),
)
# ("field", name) or ("text", literal)
SEGMENTS = st.lists(
    st.one_of(NAME.map(lambda n: ("field", n)), LITERAL.map(lambda t: ("text", t))),
    min_size=1,
    max_size=8,
)
# A value whose words must come through: words with messy whitespace and control characters
# between them (cleaned to one space), or a number.
PLAIN_VALUE = st.one_of(
    st.from_regex(r"[A-Za-z0-9]{1,8}([ \t\n\x00\x1f]{1,3}[A-Za-z0-9]{1,8}){0,3}", fullmatch=True),
    st.integers(-(10**6), 10**6),
)
# What renders as nothing: an empty value, None, a list or a dict.
BLANK_VALUE = st.one_of(
    st.just(None),
    st.just(""),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2),
)
# One piece that makes a template invalid, wherever it goes.
BROKEN = st.sampled_from(
    [
        *("{", "}", "{}", "{ }", "{0}", "{1a}", "{-x}", "{é}", "{ title }", "{ti tle}"),
        *("{a.b}", "{title.upper}", "{a[0]}", "{title:d}", "{title!r}", "{title!z}"),
        "{title:>{width}}",
    ]
)


def _template(segments: list[tuple[str, str]]) -> str:
    return "".join("{" + part + "}" if kind == "field" else part for kind, part in segments)


def _letters(text: str) -> str:
    """The letters and digits of a text, in order (render_item only tidies what is between)."""
    return re.sub(r"[^A-Za-z0-9]", "", text)


def _rendered_value(value: Any) -> str:
    """What a field's value is expected to contribute: dicts and lists and None nothing."""
    return "" if value is None or isinstance(value, dict | list) else str(value)


@st.composite
def templates(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]], dict[str, Any], bool]:
    """(template, its segments, an item's fields, whether the template is valid)."""
    segments = draw(SEGMENTS)
    if all(kind == "text" for kind, _ in segments):  # at least one placeholder
        segments.insert(draw(st.integers(0, len(segments))), ("field", draw(NAME)))
    names = sorted({part for kind, part in segments if kind == "field"})
    fields: dict[str, Any] = {}
    for name in names:  # mostly a value; else missing, or what renders as nothing
        kind = draw(st.sampled_from(["value", "missing", "blank", "value", "value"]))
        if kind != "missing":
            fields[name] = draw(PLAIN_VALUE if kind == "value" else BLANK_VALUE)
    # Fields the template does not name: none of their words may show up.
    for name in draw(st.lists(NAME, max_size=3)):
        if name not in names:
            fields[name] = "unnamed field words"
    template = _template(segments)
    if draw(st.booleans()):
        return template, segments, fields, True
    at = draw(st.integers(0, len(segments)))
    broken = _template(segments[:at]) + draw(BROKEN) + _template(segments[at:])
    return broken, segments, fields, False


def test_fuzz_templates() -> None:
    """A valid template names exactly its placeholders and renders to clean text that holds
    each value of the fields it names, and exactly the letters and digits of its literal
    text and of those values, in order (a missing field, None, a list or a dict renders
    empty), with no separator left dangling where the template has no brackets. A template
    broken in one place is refused, by validate_template and by render_item alike, with an
    InputError that quotes it."""

    @fuzz(300)
    @given(case=templates())
    def prop(case: tuple[str, list[tuple[str, str]], dict[str, Any], bool]) -> None:
        template, segments, fields, valid = case
        FUZZ_RUNS["templates"] += 1
        if not valid:
            for attempt in (validate_template, lambda t: render_item(fields, t)):
                with pytest.raises(InputError) as refused:
                    attempt(template)
                assert str(refused.value).startswith(f"invalid template {template!r}: ")
            FUZZ_RUNS["templates refused"] += 1
            return
        names = [part for kind, part in segments if kind == "field"]
        assert validate_template(template) == names
        text = render_item(fields, template)
        FUZZ_RUNS["templates rendered"] += 1
        assert text == clean_text(text)  # no control characters, one space, stripped
        expected = "".join(
            part.replace("{{", "{").replace("}}", "}")
            if kind == "text"
            else _rendered_value(fields.get(part))
            for kind, part in segments
        )
        assert _letters(text) == _letters(expected)
        values = [clean_text(_rendered_value(fields.get(name))) for name in names]
        for value in values:
            assert value in text
        FUZZ_RUNS["templates rendered with a field value"] += any(values)
        if not re.search(r"[()\[\]]", template):
            assert not text or (text[0] not in SEPARATOR and text[-1] not in SEPARATOR)

    prop()
    fuzz_report("templates", 300)
    print({k: v for k, v in FUZZ_RUNS.items() if k.startswith("templates ")})
    # Both kinds ran, and render_item really rendered field values (not only blanks).
    ran, rendered = FUZZ_RUNS["templates"], FUZZ_RUNS["templates rendered"]
    assert rendered >= 0.2 * ran and FUZZ_RUNS["templates refused"] >= 0.2 * ran
    assert FUZZ_RUNS["templates rendered with a field value"] >= 0.4 * rendered


# -- any template text and any field values -------------------------------------------------

# Field names come from the operator's --text options, so printable ones here.
FIELD_NAME = st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), max_size=12)
TEMPLATE_PIECES = (
    *("{", "}", "{{", "}}", "{}", "{0}", "{a[0]}", "{title}", "{brand}", "{ title }", "{a-b}"),
    *("{title:d}", "{title!r}", "{title.upper}", "; ", ", ", "()", " | "),
)
TEMPLATE_TEXT = st.lists(
    st.one_of(
        TEXT,
        st.sampled_from(TEMPLATE_PIECES),
        FIELD_NAME.map(lambda name: "{" + name + "}"),
    ),
    max_size=6,
).map("".join)
FIELDS = st.dictionaries(
    st.one_of(st.sampled_from(["title", "brand", "genre", "a-b", "x_1"]), FIELD_NAME),
    st.one_of(TEXT, HUGE, st.integers(), st.none(), JSON_VALUE),
    max_size=5,
)


def test_fuzz_template_text() -> None:
    """Any template text with any field values is refused with InputError or renders to
    text without control characters, stripped and within the length cap."""

    @fuzz(300)
    @given(template=TEMPLATE_TEXT, fields=FIELDS)
    def prop(template: str, fields: dict[str, Any]) -> None:
        FUZZ_RUNS["template text"] += 1
        try:
            names = validate_template(template)
        except InputError as exc:
            assert "invalid template" in str(exc)
            FUZZ_RUNS["template text refused"] += 1
            return
        assert all(isinstance(n, str) and n for n in names)
        text = render_item(fields, template)
        assert isinstance(text, str) and not CONTROL.search(text) and text == text.strip()
        assert len(text) <= MAX_TEXT_CHARS
        FUZZ_RUNS["template text rendered"] += 1

    prop()
    fuzz_report("template text", 300)
    assert FUZZ_RUNS["template text rendered"] >= 30
    assert FUZZ_RUNS["template text refused"] >= 30


def test_fuzz_render_without_template() -> None:
    """Without a template: the title and 'Key: value' parts, without control characters."""

    @fuzz(150)
    @given(fields=FIELDS)
    def prop(fields: dict[str, Any]) -> None:
        FUZZ_RUNS["render"] += 1
        text = render_item(fields)
        assert isinstance(text, str) and len(text) <= 6 * 20_000 + 200
        assert not CONTROL.search(text)

    prop()
    fuzz_report("render", 150)


HISTORY_EVENT = st.builds(
    HistoryEvent,
    text=st.one_of(TEXT, HUGE, SQLISH),
    action=st.one_of(
        st.sampled_from(["purchase", "rate", "review", "view", "listen", "zap"]), TEXT
    ),
    value=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    time=st.one_of(st.none(), st.floats(allow_nan=False)),
)


def test_fuzz_user_history_text() -> None:
    """Any history becomes text, or an InputError for an unknown language; with an unlimited
    budget every distinct non-empty event text is in it, and a budget only shortens it."""

    @fuzz(150)
    @given(
        events=st.lists(HISTORY_EVENT, max_size=12),
        lang=st.sampled_from(["en", "zh", "fr", ""]),
        max_tokens=st.integers(1, 600),
    )
    def prop(events: list[HistoryEvent], lang: str, max_tokens: int) -> None:
        FUZZ_RUNS["history text"] += 1
        try:
            text = user_history_text(events, lang=lang, max_tokens=max_tokens)
        except InputError as exc:
            assert lang not in ("en", "zh") and "unknown language" in str(exc)
            return
        assert isinstance(text, str)
        everything = user_history_text(events, lang=lang, max_tokens=10**9)
        for event in events:
            if event.text:
                assert event.text in everything
        assert len(text) <= len(everything)

    prop()
    fuzz_report("history text", 150)


# -- bugs found by these tests ----------------------------------------------------------------

# Fixed: a placeholder with a format spec, a conversion or a dot used to pass
# validate_template and then fail in render_item with a ValueError or AttributeError.


@pytest.mark.parametrize(
    "template", ["{title:d}", "{title:>{width}}", "{title!z}", "{title.upper}", "{brand.x}"]
)
def test_templates_that_cannot_render_are_refused_when_validated(template: str) -> None:
    with pytest.raises(InputError, match="invalid template"):
        validate_template(template)
    with pytest.raises(InputError, match="invalid template"):
        render_item({"title": "Tea", "brand": "Acme"}, template)


def test_field_names_are_cleaned_in_item_text() -> None:
    text = render_item({"title": "Tea", "origin\n\x00\x1f": "Kenya"})
    assert not re.search(r"[\x00-\x1f\x7f]", text)


@pytest.mark.parametrize("template", ["{title}, [{brand}]", "{title}; ({brand})"])
def test_a_missing_bracketed_field_leaves_no_dangling_separator(template: str) -> None:
    assert render_item({"title": "Tea"}, template) == "Tea"
