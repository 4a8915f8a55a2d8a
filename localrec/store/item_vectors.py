"""Incremental encoding: embed every item whose text changed since it was last encoded,
and count the items whose vector is stale (its text changed, and `encode` has not run).

The content hash covers the model, the document prefix and the text, so an unchanged
catalogue costs one pass of hashing, and several models keep vectors side by side.
Vectors are committed chunk by chunk: a killed run loses at most one chunk and the next
run resumes where it stopped. A stale count costs that same pass of rendering and
hashing (~0.2 s per 3,000 items on a busy 2-core machine: benchmarks/bench_stale.py), so
it is kept in the database until the items, their vectors or the template change;
`encode` leaves a count of 0 for what it covered.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from localrec.embedding.llama_encoder import Encoder, require_encoder
from localrec.errors import InputError, UnknownModel
from localrec.models.registry import ModelSpec, load_registry
from localrec.store.db import ItemRow, Store, require_store
from localrec.text import RENDER_VERSION, render_item

__all__ = [
    "ENCODE_CHUNK",
    "EncodeReport",
    "PendingItems",
    "content_hash",
    "database_stats",
    "encode_items",
    "item_text",
    "iter_item_texts",
    "mark_encoded",
    "pending_items",
    "stale_count",
]

TEMPLATE_KEY = "template.{domain}"
# Items per `encode` call and per commit (the Ray engine's batches are the same).
ENCODE_CHUNK = 256


@dataclass
class EncodeReport:
    """What one `encode_items` run did.

    Attributes:
        model: The model whose vectors were written.
        encoded: How many items were embedded.
        skipped: How many items already had a vector of their current text.
        truncated: How many texts were cut at the model's token limit.
        chunks: How many chunks were committed.
        seconds: Wall time of the run.
    """

    model: str
    encoded: int = 0
    skipped: int = 0
    truncated: int = 0
    chunks: int = 0
    seconds: float = 0.0

    @property
    def items_per_second(self) -> float:
        """Items embedded per second of the run."""
        return self.encoded / self.seconds if self.seconds > 0 else 0.0


def content_hash(model: str, prefix: str, text: str) -> str:
    return hashlib.sha256(f"{model}\x1f{prefix}\x1f{text}".encode()).hexdigest()


def item_text(row: ItemRow, template: str | None = None) -> str:
    """The item as the model reads it: the domain's template, or title plus text fields."""
    if template:
        fields: dict[str, Any] = {**row.attributes, **row.fields, "title": row.title}
        return render_item(fields, template)
    return render_item({"title": row.title, **row.fields})


def templates(store: Store) -> dict[str, str]:
    prefix = TEMPLATE_KEY.format(domain="")
    return {k[len(prefix) :]: v for k, v in store.config_items().items() if k.startswith(prefix)}


def iter_item_texts(
    store: Store, domain: str | None = None, by_domain: Mapping[str, str] | None = None
) -> Iterator[tuple[str, str, str]]:
    """(item id, domain, text) for every item, with the templates set in the database (or
    `by_domain`, templates read before)."""
    if by_domain is None:
        by_domain = templates(store)
    for row in store.iter_items(domain):
        yield row.id, row.domain, item_text(row, by_domain.get(row.domain))


@dataclass
class PendingItems:
    """What an encoding run has to embed, and what it needs to record afterwards that the
    vectors of the domains it covered are current (`mark_encoded`)."""

    model: str
    prefix: str
    items: list[tuple[str, str, str]]  # (item id, text, content hash)
    skipped: int  # items whose vector is of their text already
    generation: int  # the vectors generation before any of them is written
    covered: set[str]  # the domains whose items were looked at
    by_domain: dict[str, str]  # the templates they were rendered with


def pending_items(
    store: Store, spec: ModelSpec, *, force: bool = False, domain: str | None = None
) -> PendingItems:
    """Every item whose vector of `spec`'s model is missing or stale (all of them with
    `force`), for `encode_items` and the Ray engine alike; an item whose template gives it
    no text is one clear error."""
    prefix = spec.document_prefix
    generation = store.vectors_generation()
    by_domain = templates(store)
    existing = {} if force else store.vector_hashes(spec.name)
    out = PendingItems(spec.name, prefix, [], 0, generation, set(), by_domain)
    for item_id, item_domain, text in iter_item_texts(store, domain, by_domain):
        out.covered.add(item_domain)
        if not text:
            # Titles are never empty, so a template naming only fields the item lacks did it.
            template = by_domain.get(item_domain)
            raise InputError(
                f"item {item_id!r} ({item_domain}) has no text with the template {template!r}: "
                f"it has none of the fields the template names; change it with `localrec "
                f"config set template.{item_domain} ...` or remove it with `config unset`"
            )
        digest = content_hash(spec.name, prefix, text)
        if existing.get(item_id) == digest:
            out.skipped += 1
        else:
            out.items.append((item_id, text, digest))
    return out


def mark_encoded(store: Store, pending: PendingItems, writes: int) -> None:
    """After `writes` transactions of `put_vectors` stored `pending`'s vectors: if nobody
    else wrote meanwhile (each of them bumped the generation once), every item of the
    covered domains has the vector of its text, so their stale count is 0."""
    current = pending.generation + writes
    if store.vectors_generation() != current:
        return
    for name in pending.covered:
        key = _stale_key(pending.model, pending.prefix, name, pending.by_domain.get(name))
        store.put_generation_count(key, 0, current)


def encode_items(
    store: Store,
    encoder: Encoder,
    *,
    chunk_size: int = ENCODE_CHUNK,
    force: bool = False,
    domain: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EncodeReport:
    """Embed the items whose text changed for the encoder's model, committing each chunk,
    so a killed run resumes where it stopped.

    Args:
        store: The database whose items are embedded.
        encoder: The encoder (`open_encoder()`); its model's vectors are written.
        chunk_size: Items embedded and committed together.
        force: Embed every item again, changed or not.
        domain: Only the items of this domain.
        progress: Called as `progress(done, total)` after every chunk.
    """
    require_store(store)
    require_encoder(encoder)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InputError(f"chunk_size must be a positive whole number, got {chunk_size!r}")
    if domain is not None:
        if not isinstance(domain, str):
            raise InputError(f"domain must be a domain's name, got {domain!r:.40}")
        store.require_domain(domain)
    start = time.perf_counter()
    report = EncodeReport(model=encoder.name)
    pending_run = pending_items(store, encoder.spec, force=force, domain=domain)
    pending, report.skipped = pending_run.items, pending_run.skipped
    total = len(pending)
    if progress:
        progress(0, total)
    for offset in range(0, total, chunk_size):
        chunk = pending[offset : offset + chunk_size]
        vectors = encoder.encode([text for _, text, _ in chunk])
        report.truncated += encoder.last_truncated
        with store.write() as conn:
            store.put_vectors(
                conn, encoder.name, [i for i, _, _ in chunk], [h for _, _, h in chunk], vectors
            )
        report.encoded += len(chunk)
        report.chunks += 1
        if progress:
            progress(report.encoded, total)
    mark_encoded(store, pending_run, report.chunks)
    if domain is None and not store.packed_is_current(encoder.name):
        store.pack_matrix(encoder.name)
    report.seconds = time.perf_counter() - start
    return report


def _stale_key(model: str, prefix: str, domain: str, template: str | None) -> str:
    key = json.dumps([RENDER_VERSION, model, prefix, domain, template], ensure_ascii=False)
    return "stale:" + hashlib.sha256(key.encode()).hexdigest()[:32]


def stale_count(store: Store, model: str, prefix: str, domain: str) -> int:
    """How many items of `domain` have a vector of `model` (with the document `prefix`)
    that is not the vector of their text now: the item or its domain's template changed,
    and `encode` has not run since. Worked out once, then kept in the database until
    the items, their vectors or the template change."""
    template = templates(store).get(domain)
    key = _stale_key(model, prefix, domain, template)
    cached = store.generation_count(key)
    if cached is not None:
        return cached
    generation = store.vectors_generation()
    hashes = store.vector_hashes(model)
    stale = 0
    for item_id, _, text in iter_item_texts(store, domain, {domain: template} if template else {}):
        digest = hashes.get(item_id)
        stale += digest is not None and digest != content_hash(model, prefix, text)
    store.put_generation_count(key, stale, generation)
    return stale


def database_stats(store: Store) -> dict[str, Any]:
    """`Store.stats`, with `stale_vectors`: for each model of the registry that has item
    vectors here, how many of them are stale (`stale_count`, over every domain)."""
    data = store.stats()
    registry = load_registry()
    stale: dict[str, int] = {}
    for model in data["vectors"]:
        try:
            prefix = registry.get(model).document_prefix
        except UnknownModel:
            continue  # a model no longer registered: its prefix, so its hashes, are unknown
        stale[model] = sum(stale_count(store, model, prefix, d) for d in data["items"])
    data["stale_vectors"] = stale
    return data
