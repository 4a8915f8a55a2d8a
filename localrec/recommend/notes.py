"""What a list says about itself besides its items (`RecommendationList.notes`): why it is
not personal, and which items of its domain it could not rank as they are now."""

from __future__ import annotations

from collections.abc import Iterable

from localrec.recommend.catalogue import Catalogue
from localrec.store.db import ItemMatrix

__all__ = ["catalogue_notes", "cold_start_note"]


def cold_start_note(user: str | None, domain: str, fallback: bool) -> str:
    """Why a list is not personal, and what it shows instead."""
    if user is not None:
        who = f"user {user!r} has no usable history"
    else:
        who = "the given history has no usable items"
    return f"{who}; showing the most popular {domain} items" if fallback else who


def catalogue_notes(
    catalogue: Catalogue,
    domain_matrix: ItemMatrix,
    ranked: ItemMatrix,
    whole_domain: bool,
    history_domains: Iterable[str | None] = (),
) -> list[str]:
    """Items of the domain that were left out (damaged vectors, none yet), and items of it
    or of the user's history (`history_domains`) whose vectors hold an old text (stale:
    the item or its domain's template changed since `encode`). `whole_domain`: the list
    ranked every item of the domain, not a few candidates."""
    domain = domain_matrix.domain
    assert domain is not None
    notes = []
    if domain_matrix.damaged:
        shown = ", ".join(map(repr, domain_matrix.damaged[:5]))
        notes.append(
            f"{len(domain_matrix.damaged)} {domain} item vector(s) are damaged in the "
            f"database and were left out ({shown}); run `localrec encode --force`"
        )
    unencoded = catalogue.unencoded(ranked) if whole_domain else 0
    if unencoded > 0:
        notes.append(
            f"{unencoded} {domain} item(s) have no {catalogue.model} vector yet and were left "
            "out; run `localrec encode`"
        )
    for name in sorted({domain, *(d for d in history_domains if d is not None)}):
        stale = catalogue.stale(name)
        if stale > 0:
            notes.append(
                f"{stale} {name} item(s) changed after they were encoded (their text, or "
                f"template.{name}): their vectors still hold the old text; run `localrec encode`"
            )
    return notes
