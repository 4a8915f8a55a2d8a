"""Incremental encoding: embed every item whose text changed since it was last encoded.

The content hash covers the model, the document prefix and the text, so an unchanged
catalogue costs one pass of hashing, and several models keep vectors side by side.
Vectors are committed chunk by chunk: a killed run loses at most one chunk and the next
run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from localrec.embedding.llama_encoder import Encoder
from localrec.errors import InputError
from localrec.models.registry import ModelSpec
from localrec.store.db import ItemRow, Store
from localrec.text import render_item

__all__ = [
    "ENCODE_CHUNK",
    "EncodeReport",
    "content_hash",
    "encode_items",
    "item_text",
    "iter_item_texts",
    "pending_items",
]

TEMPLATE_KEY = "template.{domain}"
# Items per `encode` call and per commit (the Ray engine's batches are the same).
ENCODE_CHUNK = 256


@dataclass
class EncodeReport:
    """What one `encode_items` run did."""

    model: str
    encoded: int = 0
    skipped: int = 0
    truncated: int = 0
    chunks: int = 0
    seconds: float = 0.0

    @property
    def items_per_second(self) -> float:
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


def iter_item_texts(store: Store, domain: str | None = None) -> Iterator[tuple[str, str, str]]:
    """(item id, domain, text) for every item, with the templates set in the database."""
    by_domain = templates(store)
    for row in store.iter_items(domain):
        yield row.id, row.domain, item_text(row, by_domain.get(row.domain))


def pending_items(
    store: Store, spec: ModelSpec, *, force: bool = False, domain: str | None = None
) -> tuple[list[tuple[str, str, str]], int]:
    """(item id, text, content hash) of every item whose vector of `spec`'s model is missing
    or stale (all of them with `force`), and how many are current."""
    prefix = spec.document_prefix
    existing = {} if force else store.vector_hashes(spec.name)
    pending: list[tuple[str, str, str]] = []
    skipped = 0
    for item_id, item_domain, text in iter_item_texts(store, domain):
        if not text:
            # Titles are never empty, so a template naming only fields the item lacks did it.
            template = templates(store).get(item_domain)
            raise InputError(
                f"item {item_id!r} ({item_domain}) has no text with the template {template!r}: "
                f"it has none of the fields the template names; change it with `localrec "
                f"config set template.{item_domain} ...` or remove it with `config unset`"
            )
        digest = content_hash(spec.name, prefix, text)
        if existing.get(item_id) == digest:
            skipped += 1
        else:
            pending.append((item_id, text, digest))
    return pending, skipped


def encode_items(
    store: Store,
    encoder: Encoder,
    *,
    chunk_size: int = ENCODE_CHUNK,
    force: bool = False,
    domain: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EncodeReport:
    """Encode what changed; `progress(done, total)` is called after every chunk."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InputError(f"chunk_size must be a positive whole number, got {chunk_size!r}")
    if domain is not None:
        store.require_domain(domain)
    start = time.perf_counter()
    report = EncodeReport(model=encoder.name)
    pending, report.skipped = pending_items(store, encoder.spec, force=force, domain=domain)
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
    if domain is None and not store.packed_is_current(encoder.name):
        store.pack_matrix(encoder.name)
    report.seconds = time.perf_counter() - start
    return report
