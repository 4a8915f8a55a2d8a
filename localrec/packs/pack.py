"""An opened pack: its catalogue, vectors, adapter and collaborative weights, read once,
and the tuned hybrid over them that `recommend` and `eval --pack` both rank with."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from localrec.errors import ModelFileError
from localrec.models.cache import model_sha256, resolve_model
from localrec.packs.format import PACK_REVEALS, PackContent, item_rows, pack_errors, read_pack
from localrec.paths import as_path
from localrec.scoring.adapter import TrainedAdapter, aligned
from localrec.scoring.hybrid import HybridModel
from localrec.scoring.item_models import part_from_weights
from localrec.scoring.itemknn import ItemKNNScorer
from localrec.scoring.profiles import MEAN_HALF_LIFE
from localrec.store.db import ItemRow
from localrec.store.vectors import ItemMatrix
from localrec.tuning.storage import adapter_from_stored

__all__ = ["KEPT_ITEM_ROWS", "Pack", "open_pack", "require_pack_model"]

# Item rows a pack keeps once read (a server reads the same histories' and lists' items
# over and over; the file never changes). Past this many they are all let go.
KEPT_ITEM_ROWS = 8192


def open_pack(path: Path | str) -> Pack:
    """The pack at `path`, checked (format version, checksum) and read into memory;
    `Recommender(db, pack=...)` serves from it.

    Raises:
        PackError: The file is missing, damaged, not a pack, or of a newer format.
    """
    checked = as_path(path, "the pack")
    return Pack(checked, read_pack(checked))


def require_pack_model(pack: Pack) -> Path:
    """The local GGUF of the pack's model, which must be the very file it was built with:
    another file under the same name would make vectors that do not match the pack's."""
    spec, path = resolve_model(pack.model)
    actual = model_sha256(spec, path)
    if actual != pack.model_sha256:
        raise ModelFileError(
            f"{pack.path} was built with {pack.model} sha256 {pack.model_sha256[:12]}..., "
            f"but {path} has sha256 {actual[:12]}...; get the pack's model file (`localrec "
            f"models pull {pack.model}`) or a pack built with this one"
        )
    return path


class Pack:
    """A pack file's content (from `open_pack`). Never written: the device's own data lives
    in its private database. Close it when done (or use it as a context manager)."""

    def __init__(self, path: Path, content: PackContent) -> None:
        self.path = path
        self.meta = content.meta
        self.sizes = content.sizes
        self._conn = content.connection
        self._lock = threading.Lock()
        self.ids = content.ids
        self.domains = content.domains
        # Asked on every recommend (the domain check): worked out once, not per call.
        self._domain_names = tuple(sorted(set(self.domains)))
        self.index: dict[str, int] = {item_id: r for r, item_id in enumerate(self.ids)}
        self.vectors = content.vectors
        self.popularity = content.popularity
        self.similarity = content.similarity
        self.parts = content.parts
        self._adapter_payload = content.adapter
        self._adapter: TrainedAdapter | None = None
        # Decoding empties the payload: threads asking at once must wait for the first.
        self._adapter_lock = threading.Lock()
        self._rows: dict[str, ItemRow] = {}

    @property
    def model(self) -> str:
        """The embedding model the pack was built with."""
        return str(self.meta["model"])

    @property
    def model_sha256(self) -> str:
        return str(self.meta["model_sha256"])

    @property
    def dim(self) -> int:
        """Its vectors' dimension."""
        return int(self.meta["dim"])

    @property
    def templates(self) -> dict[str, str]:
        return dict(self.meta.get("templates", {}))

    def domain_names(self) -> list[str]:
        """The domains of its catalogue."""
        return list(self._domain_names)

    def get_items(self, ids: Sequence[str]) -> dict[str, ItemRow]:
        """The pack's items among `ids`, read from the file it was opened as (once: see
        KEPT_ITEM_ROWS)."""
        kept = self._rows
        wanted = [i for i in dict.fromkeys(ids) if i in self.index]
        found = {i: kept[i] for i in wanted if i in kept}
        missing = [i for i in wanted if i not in found]
        if not missing:
            return found
        with self._lock, pack_errors(self.path):
            rows = item_rows(self._conn, missing)
        read = {
            item_id: ItemRow(item_id, domain, title, json.loads(fields), json.loads(attributes))
            for item_id, domain, title, fields, attributes in rows
        }
        # Replaced whole, never changed in place: other threads read the old or the new.
        self._rows = {**(kept if len(kept) + len(read) <= KEPT_ITEM_ROWS else {}), **read}
        return {**found, **read}

    def close(self) -> None:
        """Close the pack file."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Pack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def item_matrix(self) -> ItemMatrix:
        return ItemMatrix(self.model, None, self.ids, self.domains, self.vectors)

    @property
    def adapter(self) -> TrainedAdapter | None:
        """The pack's tuned adapter (None without one), decoded once, by whichever thread
        asks first; the others wait for it."""
        with self._adapter_lock:
            if self._adapter is None and self._adapter_payload is not None:
                if "adapter" in self.meta:
                    self._adapter = adapter_from_stored(self.meta["adapter"], self._adapter_payload)
                self._adapter_payload = None  # decoded once: the bytes are not needed again
            return self._adapter

    def hybrid(
        self,
        index: dict[str, int],
        vectors: np.ndarray,
        domains: Sequence[str],
        mean_half_life: float = MEAN_HALF_LIFE,
    ) -> HybridModel | None:
        """The tuned hybrid over a catalogue whose item `index` (id -> row) holds the pack's
        items and perhaps others (a device's own, or a dataset's): `vectors` and `domains`
        are that catalogue's rows. Items the pack does not know are new to the adapter and
        have no neighbours. None when the pack has no adapter."""
        adapter = self.adapter
        if adapter is None:
            return None
        adapter = aligned(adapter, index, vectors)
        n = len(vectors)
        moved = np.array([index.get(i, -1) for i in self.ids], dtype=np.int64)

        def renumbered(matrix: sp.spmatrix) -> sp.csr_matrix:
            coo = sp.coo_matrix(matrix)
            rows, cols = moved[coo.row], moved[coo.col]
            keep = (rows >= 0) & (cols >= 0)
            return sp.csr_matrix((coo.data[keep], (rows[keep], cols[keep])), shape=(n, n))

        knn = ItemKNNScorer.from_similarity(
            renumbered(self.similarity),
            recency_decay=float(self.meta.get("knn", {}).get("recency_decay", 0.8)),
        )
        others = {name: part_from_weights(name, renumbered(m)) for name, m in self.parts.items()}
        return HybridModel(
            adapter, vectors, adapter.domain_numbers(domains), knn, mean_half_life, others
        )

    def info(self) -> dict[str, Any]:
        """What `localrec pack info` shows: provenance, privacy settings, counts and sizes."""
        meta = {k: v for k, v in self.meta.items() if k not in ("adapter", "templates")}
        settings = self.meta.get("adapter")
        adapter_domains = (
            [settings["domain_names"][int(d)] for d in sorted(settings["domains"])]
            if settings
            else []
        )
        per_domain: dict[str, int] = {}
        for d in self.domains:
            per_domain[d] = per_domain.get(d, 0) + 1
        return {
            "path": str(self.path),
            "file_bytes": self.path.stat().st_size,
            **meta,
            "items": per_domain,
            "neighbour_pairs": int(self.similarity.nnz),
            "items_with_popularity": int((self.popularity > 0).sum()),
            "adapter_domains": adapter_domains,
            "templates": self.templates,
            "part_bytes": self.sizes,
            "reveals": PACK_REVEALS.replace("K ", f"K = {self.meta.get('min_users')} "),
        }
