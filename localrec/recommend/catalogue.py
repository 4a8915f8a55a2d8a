"""Where a `Recommender` finds the items it ranks: one database (items, vectors, adapter
and everyone's events), or a pack plus the device's own items in its private database.

Both answer the same questions, so `Recommender` has one code path: the items and their
vectors, the templates, popularity, and the tuned hybrid (`TunedCatalogue`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from localrec.embedding.llama_encoder import Encoder
from localrec.errors import InputError, NotEncoded
from localrec.models.registry import ModelSpec
from localrec.packs.pack import Pack
from localrec.recommend.tuned import TunedCatalogue
from localrec.store.db import ItemMatrix, ItemRow, Store
from localrec.store.item_vectors import database_stats, encode_items, stale_count, templates
from localrec.tuning.storage import load_adapter

__all__ = ["PACK_MODEL_KEY", "Catalogue", "DatabaseCatalogue", "PackCatalogue", "follow_pack"]

# The private database's record of the model the last pack it served was built with.
PACK_MODEL_KEY = "pack.model"


class Catalogue(ABC):
    """The items a Recommender ranks, with one model's vectors of them."""

    def __init__(self, store: Store, spec: ModelSpec) -> None:
        self.store = store
        self.spec = spec
        self.model = spec.name
        self._lock = threading.Lock()
        self._tuned: tuple[object, TunedCatalogue | None] | None = None

    @abstractmethod
    def domains(self) -> list[str]: ...

    @abstractmethod
    def item_matrix(self, domain: str | None) -> ItemMatrix:
        """The encoded items of `domain` (every domain when None), dim-checked."""

    @abstractmethod
    def get_items(self, ids: Sequence[str]) -> dict[str, ItemRow]: ...

    @abstractmethod
    def templates(self) -> dict[str, str]: ...

    @abstractmethod
    def popularity(self, matrix: ItemMatrix) -> np.ndarray:
        """How popular each item of `matrix` is (0 where unknown)."""

    @abstractmethod
    def unencoded(self, matrix: ItemMatrix) -> int:
        """How many items of the matrix's domain have no vector yet."""

    @abstractmethod
    def stale(self, domain: str) -> int:
        """How many items of `domain` have a vector that is not that of their text now."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """The counts `localrec stats` prints."""

    @abstractmethod
    def has_adapter(self) -> bool: ...

    @abstractmethod
    def _build_tuned(self, mean_half_life: float) -> TunedCatalogue | None: ...

    @abstractmethod
    def _generation(self) -> object:
        """Changes whenever the items or vectors the tuned model is built over change."""

    def require_domain(self, domain: str) -> None:
        known = self.domains()
        if domain not in known:
            have = ", ".join(known) or "no items yet"
            raise InputError(f"unknown domain {domain!r}; the catalogue has: {have}")

    def item_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        everything = self.item_matrix(None)
        index = everything.index()
        return {i: everything.matrix[index[i]] for i in ids if i in index}

    def tuned(self, mean_half_life: float) -> TunedCatalogue | None:
        """The tuned hybrid over this catalogue, built once (again after items change)."""
        with self._lock:
            generation = self._generation()
            if self._tuned is None or self._tuned[0] != generation:
                self._tuned = (generation, self._build_tuned(mean_half_life))
            return self._tuned[1]


class DatabaseCatalogue(Catalogue):
    """One database holds everything: the catalogue, and everyone's events for item-kNN."""

    def domains(self) -> list[str]:
        return self.store.domains()

    def require_domain(self, domain: str) -> None:
        self.store.require_domain(domain)

    def item_matrix(self, domain: str | None) -> ItemMatrix:
        if domain is not None:
            self.store.require_domain(domain)
        return self.store.item_matrix(self.model, domain, dim=self.spec.dim)

    def get_items(self, ids: Sequence[str]) -> dict[str, ItemRow]:
        return self.store.get_items(ids)

    def item_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        return self.store.item_vectors(self.model, ids)

    def templates(self) -> dict[str, str]:
        return templates(self.store)

    def popularity(self, matrix: ItemMatrix) -> np.ndarray:
        counts = self.store.popularity(matrix.domain)
        return np.array([counts.get(i, 0) for i in matrix.ids], dtype=np.float32)

    def unencoded(self, matrix: ItemMatrix) -> int:
        return self.store.unencoded_items(self.model, matrix)

    def stale(self, domain: str) -> int:
        return stale_count(self.store, self.model, self.spec.document_prefix, domain)

    def stats(self) -> dict[str, Any]:
        return database_stats(self.store)

    def has_adapter(self) -> bool:
        return self.store.has_adapter(self.model)

    def _generation(self) -> object:
        return None  # built once per Recommender, as before packs

    def _build_tuned(self, mean_half_life: float) -> TunedCatalogue | None:
        found = load_adapter(self.store, self.model)
        if found is None:
            return None
        return TunedCatalogue.from_store(
            self.store, found, self.model, self.spec.dim, mean_half_life
        )


class PackCatalogue(Catalogue):
    """A pack's catalogue, plus the items this device added to its private database
    (encoded here, with the pack's model). The pack is never written."""

    def __init__(self, pack: Pack, store: Store, spec: ModelSpec) -> None:
        super().__init__(store, spec)
        self.pack = pack
        self._matrices: dict[str | None, tuple[int, ItemMatrix]] = {}

    def domains(self) -> list[str]:
        return sorted(set(self.pack.domain_names()) | set(self.store.domains()))

    def _everything(self) -> ItemMatrix:
        generation = self.store.vectors_generation()
        cached = self._matrices.get(None)
        if cached is not None and cached[0] == generation:
            return cached[1]
        pack = self.pack.item_matrix()
        local = self._local(None)
        if local is not None:
            keep = [r for r, i in enumerate(local.ids) if i not in self.pack.index]
            matrix = ItemMatrix(
                self.model,
                None,
                pack.ids + tuple(local.ids[r] for r in keep),
                pack.domains + tuple(local.domains[r] for r in keep),
                np.vstack([pack.matrix, local.matrix[keep]]),
            )
        else:
            matrix = pack
        self._matrices = {None: (generation, matrix)}
        return matrix

    def item_matrix(self, domain: str | None) -> ItemMatrix:
        everything = self._everything()
        if domain is None:
            return everything
        self.require_domain(domain)
        generation = self.store.vectors_generation()
        cached = self._matrices.get(domain)
        if cached is not None and cached[0] == generation:
            return cached[1]
        picked = np.flatnonzero(np.asarray(everything.domains) == domain)
        first, last = int(picked[0]), int(picked[-1]) + 1
        # A pack keeps each domain's items together: a view, not a copy of its vectors.
        contiguous = last - first == len(picked)
        matrix = ItemMatrix(
            self.model,
            domain,
            everything.ids[first:last] if contiguous else tuple(everything.ids[r] for r in picked),
            (domain,) * len(picked),
            everything.matrix[first:last] if contiguous else everything.matrix[picked],
        )
        self._matrices[domain] = (generation, matrix)
        return matrix

    def get_items(self, ids: Sequence[str]) -> dict[str, ItemRow]:
        found = self.pack.get_items(ids)
        rest = [i for i in ids if i not in found]
        if rest:
            found.update(self.store.get_items(rest))
        return found

    def templates(self) -> dict[str, str]:
        return {**templates(self.store), **self.pack.templates}

    def popularity(self, matrix: ItemMatrix) -> np.ndarray:
        index = self.pack.index
        counts = self.pack.popularity
        return np.array(
            [counts[index[i]] if i in index else 0 for i in matrix.ids], dtype=np.float32
        )

    def _local(self, domain: str | None) -> ItemMatrix | None:
        """The device's own encoded items (of `domain`), or None."""
        if domain not in (None, *self.store.domains()):
            return None
        try:
            return self.store.item_matrix(self.model, domain, dim=self.spec.dim)
        except NotEncoded:
            return None

    def unencoded(self, matrix: ItemMatrix) -> int:
        if matrix.domain is None or matrix.domain not in self.store.domains():
            return 0
        local = self._local(matrix.domain) or ItemMatrix(
            self.model, matrix.domain, (), (), np.zeros((0, self.spec.dim), np.float32)
        )
        return self.store.unencoded_items(self.model, local)

    def stale(self, domain: str) -> int:
        """Only this device's own items can be stale: a pack's vectors are its items'."""
        if domain not in self.store.domains():
            return 0
        return stale_count(self.store, self.model, self.spec.document_prefix, domain)

    def stats(self) -> dict[str, Any]:
        data = database_stats(self.store)
        per_item = self.store.event_items()
        known = self.get_items(list(per_item))
        data["events_skipped"] = sum(n for i, n in per_item.items() if i not in known)
        info = self.pack.info()
        data["pack"] = {
            key: info[key]
            for key in ("path", "model", "checksum", "built_at", "min_users", "items")
        }
        return data

    def has_adapter(self) -> bool:
        return self.pack.adapter is not None

    def _generation(self) -> object:
        return self.store.vectors_generation()

    def _build_tuned(self, mean_half_life: float) -> TunedCatalogue | None:
        everything = self._everything()
        model = self.pack.hybrid(
            everything.index(), everything.matrix, everything.domains, mean_half_life
        )
        return None if model is None else TunedCatalogue(model, everything)


def follow_pack(store: Store, pack: Pack, encoder: Callable[[], Encoder]) -> list[str]:
    """When the pack's model differs from the one the private database last served,
    re-embed what the device holds (its own items; history texts follow by their key)
    and say so. `encoder` opens the encoder, only if something must be embedded."""
    before = store.config_get(PACK_MODEL_KEY)
    if before == pack.model:
        return []
    store.config_set(PACK_MODEL_KEY, pack.model)
    if before is None:
        return []
    encoded = encode_items(store, encoder()).encoded if store.domains() else 0
    return [
        f"{pack.path} uses model {pack.model}, the one before used {before}: "
        f"{encoded} item(s) of this device were embedded again, and stored users' history "
        "texts are embedded again as they are used"
    ]
