"""A user's history as `HistoryItem`s: stored events read from the database (the private
one beside a pack) and resolved in the catalogue, or an ad-hoc history."""

from __future__ import annotations

from collections.abc import Sequence

from localrec.recommend.catalogue import Catalogue
from localrec.recommend.history import AdHoc, HistoryItem, ad_hoc_events
from localrec.store.db import Store
from localrec.store.item_vectors import item_text

__all__ = ["ad_hoc_history", "stored_history"]


def stored_history(
    store: Store, catalogue: Catalogue, user: str, from_domains: Sequence[str] | None
) -> list[HistoryItem]:
    """The user's events of items in the catalogue (of `from_domains`), oldest first;
    events of items that left the catalogue are skipped."""
    events = store.user_events(user)
    rows = catalogue.get_items(sorted({e.item_id for e, _ in events}))
    by_domain = catalogue.templates()
    items = []
    for e, _ in events:
        row = rows.get(e.item_id)
        if row is None or (from_domains and row.domain not in from_domains):
            continue
        text = item_text(row, by_domain.get(row.domain))
        items.append(HistoryItem(text, e.action, e.value, e.item_id, row.domain, row.title))
    return items


def ad_hoc_history(catalogue: Catalogue, history: AdHoc) -> list[HistoryItem]:
    """Free text ("bought a phone; rated a laptop 5/5") or (item id or text, action) pairs."""
    events = ad_hoc_events(history)
    known = catalogue.get_items([e.text for e in events])
    by_domain = catalogue.templates()
    items = []
    for e in events:
        row = known.get(e.text)
        if row is not None:
            text = item_text(row, by_domain.get(row.domain))
            items.append(HistoryItem(text, e.action, e.value, row.id, row.domain, row.title))
        else:
            items.append(HistoryItem(e.text, e.action, e.value))
    return items
