"""A user's history as `HistoryItem`s: stored events read from the database (the private
one beside a pack) and resolved in the catalogue, or an ad-hoc history; and the history
written as text and embedded (cached in the database for stored users)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import numpy as np

from localrec.embedding.llama_encoder import Encoder
from localrec.models.registry import ModelSpec
from localrec.recommend.catalogue import Catalogue
from localrec.recommend.history import AdHoc, HistoryItem, ad_hoc_events
from localrec.store.db import Store
from localrec.store.item_vectors import item_text
from localrec.text import HistoryEvent, user_history_text

__all__ = ["ad_hoc_history", "history_text_vector", "stored_history"]


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


def history_text_vector(
    store: Store,
    spec: ModelSpec,
    encoder: Callable[[], Encoder],
    user: str | None,
    items: list[HistoryItem],
    lang: str,
    half_life: float,
    weights: dict[str, float] | None = None,
) -> np.ndarray:
    """The history written as text ("bought: ...; rated 5/5: ...") and embedded as a query.
    `weights` are the database's own action weights (`config set action.WORD W`). A stored
    user's vector is cached in the database, keyed on the events (and those weights), not
    the text, so that a cache hit needs no model load; an ad-hoc user's is never written
    down."""

    def embed() -> np.ndarray:
        enc = encoder()
        events = [HistoryEvent(i.text, i.action, i.value) for i in items]
        text = user_history_text(
            events,
            lang=lang,
            max_tokens=enc.max_tokens,
            count_tokens=enc.count_tokens,
            half_life=half_life,
            weights=weights or {},
        )
        vector: np.ndarray = enc.encode([text], query=True)[0]
        return vector

    if user is None:
        return embed()
    key = json.dumps(
        [
            spec.name,
            spec.query_prefix,
            lang,
            half_life,
            [(i.item_id, i.text, i.action, i.value) for i in items],
            *([sorted(weights.items())] if weights else []),
        ],
        ensure_ascii=False,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()
    cached = store.user_vector(user, spec.name, digest)
    if cached is not None:
        return cached
    vector = embed()
    store.put_user_vector(user, spec.name, digest, vector)
    return vector
