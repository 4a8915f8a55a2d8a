"""What an ingest checks and says beyond its counts, so that no mistake passes in silence:
a Python caller's arguments and column names, an event option naming a column that no
row has (errors), action words localrec has no weight for (a note saying how they count),
and item columns that were stored but are not part of the text the model embeds (a note
naming them)."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any

from localrec.errors import InputError
from localrec.store.db import require_store
from localrec.text import validate_template
from localrec.weighting import ACTION_STRENGTH, UNKNOWN_ACTION_STRENGTH

__all__ = [
    "check_call",
    "column_names",
    "missing_columns",
    "named_columns",
    "unembedded_columns",
    "unknown_actions",
    "value_name",
]

_SHOWN = 8
# The event options whose column a file may lack (then the default applies): named other
# than by default, the column must be in the file.
_OPTIONAL = (
    ("--action", "action"),
    ("--time", "time"),
    ("--value", "value"),
    ("--review", "review"),
)


def check_call(store: object, records: object, columns: object, kind: type, ids: object) -> None:
    """A Python caller's mistakes in the arguments of add_items / add_events are
    InputErrors too: the store, the records, the columns and a set of item ids."""
    require_store(store)
    if isinstance(records, str | bytes | dict) or not isinstance(records, Iterable):
        raise InputError(f"records must be an iterable of dicts (one per row), got {records!r:.60}")
    if columns is not None and not isinstance(columns, kind):
        raise InputError(f"columns must be a {kind.__name__}, got {columns!r:.60}")
    if ids is not None and (isinstance(ids, str) or not isinstance(ids, Container)):
        raise InputError(f"a set of item ids is a set or dict of them, got {ids!r:.60}")


def column_names(
    columns: object, required: tuple[str, ...], optional: tuple[str, ...], *more: str
) -> None:
    """Every column name of an ItemColumns or EventColumns is a string (None where that
    column may be left out)."""
    named = [(f, getattr(columns, f)) for f in required]
    named += [(f, getattr(columns, f)) for f in optional if getattr(columns, f) is not None]
    named += [("text", name) for name in more]
    for name, value in named:
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{type(columns).__name__}.{name} is a column name, got {value!r:.60}")


def value_name(columns: object, name: str) -> None:
    """set_domain and set_action are a name or None (ingest checks the name itself)."""
    value = getattr(columns, name)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{type(columns).__name__}.{name} is a name, got {value!r:.60}")


def _names(values: Iterable[str]) -> str:
    names = sorted(values)
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def named_columns(columns: Any, defaults: Any) -> dict[str, str]:
    """The optional columns of an EventColumns named other than by default (flag ->
    column); --action with --set-action is refused."""
    named = {}
    for flag, name in _OPTIONAL:
        column = getattr(columns, name)
        if column is not None and column != getattr(defaults, name):
            named[flag] = column
    if columns.set_action is not None and "--action" in named:
        raise InputError(
            f"give --action COLUMN ({named['--action']!r}) or --set-action NAME "
            f"({columns.set_action!r}), not both"
        )
    return named


def missing_columns(source: str, named: Mapping[str, str], seen: set[str]) -> None:
    """Refuse options (flag -> column) that name a column no row of `source` has."""
    absent = {flag: column for flag, column in named.items() if column not in seen}
    if not absent:
        return
    said = ", ".join(f"{flag} {column!r}" for flag, column in absent.items())
    such = "such a column" if len(absent) == 1 else "these columns"
    hint = ""
    if "--action" in absent:
        hint = f"; to give every event one action, use --set-action {absent['--action']}"
    raise InputError(
        f"{source}: {said}: no row has {such} (the columns are: {_names(seen) or 'none'})"
        f"{hint}; nothing from {source} was stored"
    )


def unknown_actions(counts: Mapping[str, int], weights: Mapping[str, float]) -> list[str]:
    """A note for each action word that neither localrec nor the database weighs."""
    known = ", ".join(f"{a} {w:.1f}" for a, w in ACTION_STRENGTH.items())
    return [
        f"action {action!r} ({n} event(s)) is not one localrec knows ({known}): it weighs "
        f"{UNKNOWN_ACTION_STRENGTH:g}; give it a weight of its own with "
        f"`localrec config set action.{action} 0.8`"
        for action, n in sorted(counts.items())
        if action not in ACTION_STRENGTH and action not in weights
    ]


def unembedded_columns(
    keys_by_domain: Mapping[str, set[str]],
    text_columns: tuple[str, ...],
    templates: Mapping[str, str],
) -> list[str]:
    """A note for each domain whose items have columns that are stored but not embedded:
    without a template the text is the title and the --text columns; with one, the
    fields it names."""
    notes = []
    title = text_columns[0]
    for domain, keys in sorted(keys_by_domain.items()):
        template = templates.get(domain)
        if template is None:
            left = keys - set(text_columns)
            what = "the title" + (" and the --text columns" if len(text_columns) > 1 else "")
            flags = " ".join(f"--text {c}" for c in [*text_columns, *sorted(left)])
            how = (
                f"give them with {flags}, or name them in a template (`localrec config set "
                f'template.{domain} "{{title}} by {{{sorted(left)[0] if left else "author"}}}"`)'
            )
        else:
            try:
                used = set(validate_template(template))
            except InputError:
                continue  # `encode` names a broken template itself
            left = keys - used
            if "title" not in used:
                left.add(title)
            what = f"what template.{domain} names"
            how = f"name them in template.{domain} (`localrec config set template.{domain} ...`)"
        left.discard("domain")  # the file's own domain column, beside --set-domain
        if left:
            notes.append(
                f"{domain}: column(s) {_names(left)} are stored but not embedded: an item's "
                f"text is {what}; to embed them, {how}"
            )
    return notes
