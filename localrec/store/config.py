"""The configuration a database may hold (`localrec config`), validated before it is stored:
item templates (`template.DOMAIN`) and action weights (`action.WORD`).

("Setting" in localrec means the evaluation's mixed/cross setting; a database holds
configuration keys.)
"""

from __future__ import annotations

import math
import re

from localrec.errors import InputError
from localrec.store.db import Store
from localrec.text import validate_template
from localrec.weighting import (
    ACTION_STRENGTH,
    ACTION_WORD,
    MAX_ACTION_STRENGTH,
    UNKNOWN_ACTION_STRENGTH,
)

__all__ = ["ACTION_PREFIX", "TEMPLATE_PREFIX", "action_weights", "set_config", "template_fields"]

TEMPLATE_PREFIX = "template."
ACTION_PREFIX = "action."
_KEY = re.compile(r"^(template\.[^\s]{1,64}|action\.[^\s]{1,64})$")


def set_config(store: Store, key: str, value: str) -> list[str]:
    """Store a configuration key, checked; returns notes for the person who set it.

    `template.DOMAIN`: DOMAIN must be a domain of the database, and every field the template
    names must be a field of at least one of its items. `action.WORD`: the weight of an
    action word, a number in (0, 10] (purchase weighs 1.0).
    """
    if not isinstance(key, str) or not isinstance(value, str):
        raise InputError(f"a configuration key and value are text, got {key!r:.40}, {value!r:.40}")
    if not _KEY.match(key):
        raise InputError(
            f"unknown configuration key {key!r}; the keys are template.DOMAIN (an item "
            "template) and action.WORD (an action's weight)"
        )
    if key.startswith(ACTION_PREFIX):
        _action_weight(key.removeprefix(ACTION_PREFIX), value)
        store.config_set(key, value)
        return []
    notes = _check_template(store, key.removeprefix(TEMPLATE_PREFIX), value)
    store.config_set(key, value)
    return notes


def _action_weight(action: str, value: str) -> float:
    if not ACTION_WORD.match(action):
        raise InputError(
            f"action.{action}: an action is a short lowercase word such as read or purchase"
        )
    try:
        weight = float(value)
    except ValueError:
        weight = math.nan
    if not 0 < weight <= MAX_ACTION_STRENGTH:  # also NaN
        raise InputError(
            f"action.{action} {value[:40]!r}: an action's weight is a number above 0 and at "
            f"most {MAX_ACTION_STRENGTH:g} (purchase weighs {ACTION_STRENGTH['purchase']:g}, "
            f"view {ACTION_STRENGTH['view']:g}, an action localrec does not know "
            f"{UNKNOWN_ACTION_STRENGTH:g})"
        )
    return weight


def template_fields(store: Store, domain: str) -> tuple[int, dict[str, int]]:
    """How many items `domain` has, and for each field a template can name, how many of
    them have it (not empty): the title, the text columns and the other columns."""
    counts: dict[str, int] = {}
    total = 0
    for row in store.iter_items(domain):
        total += 1
        for name in {"title", *row.fields, *row.attributes}:
            counts[name] = counts.get(name, 0) + 1
    return total, counts


def _check_template(store: Store, domain: str, template: str) -> list[str]:
    names = validate_template(template)
    known = store.domains()
    if domain not in known:
        raise InputError(
            f"template.{domain}: unknown domain {domain!r}; the database has: "
            f"{', '.join(known) or 'no items yet (add them first)'}"
        )
    total, counts = template_fields(store, domain)
    fields = ", ".join(sorted(counts))
    missing = [n for n in dict.fromkeys(names) if n not in counts]
    if missing:
        shown = ", ".join("{" + n + "}" for n in missing)
        raise InputError(
            f"template.{domain}: no {domain} item has {shown}; the fields of its items are: "
            f"{fields}"
        )
    return [
        f"{{{n}}} is empty for {total - counts[n]} of {total} {domain} items: it renders as "
        "nothing there"
        for n in dict.fromkeys(names)
        if counts[n] < total
    ]


def action_weights(store: Store) -> dict[str, float]:
    """The database's own action weights (`action.WORD` keys), by action word."""
    out: dict[str, float] = {}
    for key, value in store.config_items().items():
        if key.startswith(ACTION_PREFIX):
            try:
                out[key.removeprefix(ACTION_PREFIX)] = _action_weight(
                    key.removeprefix(ACTION_PREFIX), value
                )
            except InputError:
                continue  # set_config refuses such a value; one written around it is ignored
    return out
