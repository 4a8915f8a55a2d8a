"""How a tuned adapter is stored: its arrays as .npz bytes, the rest as JSON, in the store."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from localrec.data.sampling import UserSample
from localrec.scoring.adapter import AdapterConfig, DomainAdapter, TrainedAdapter
from localrec.store.db import Store

__all__ = [
    "ADAPTER_NAME",
    "adapter_bytes",
    "adapter_from_stored",
    "adapter_meta",
    "load_adapter",
    "store_adapter",
]

ADAPTER_NAME = "adapter"


def store_adapter(store: Store, adapter: TrainedAdapter) -> None:
    store.put_adapter(adapter.model, ADAPTER_NAME, adapter_meta(adapter), adapter_bytes(adapter))


def load_adapter(store: Store, model: str) -> TrainedAdapter | None:
    found = store.get_adapter(model, ADAPTER_NAME)
    return adapter_from_stored(*found) if found else None


def adapter_bytes(adapter: TrainedAdapter) -> bytes:
    """The adapter's arrays as one .npz payload."""
    arrays: dict[str, np.ndarray] = {"seen": adapter.seen}
    if adapter.counts is not None:
        arrays["counts"] = adapter.counts.astype(np.uint32)
    for d, a in adapter.domains.items():
        arrays[f"{d}/w_src"] = a.w_src.astype(np.float32)
        arrays[f"{d}/w_same"] = a.w_same.astype(np.float32)
        arrays[f"{d}/proj"] = a.proj.astype(np.float32)
        # float16 holds the offsets within ~1e-3 relative error: enough for ranking.
        # Only rows that were learned are kept: other domains' offsets stay zero.
        _put_rows(arrays, f"{d}/offsets", a.offsets)
        arrays[f"{d}/bias"] = a.bias.astype(np.float32)
        if a.inputs is not None:
            _put_rows(arrays, f"{d}/inputs", a.inputs)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def adapter_meta(adapter: TrainedAdapter) -> dict[str, Any]:
    """Everything but the arrays, as JSON-able data."""
    meta: dict[str, Any] = {
        "model": adapter.model,
        "config": adapter.config.__dict__,
        "domain_names": list(adapter.domain_names),
        "item_ids": adapter.item_ids,
        "train_pairs": adapter.train_pairs,
        "seconds": round(adapter.seconds, 1),
        "domains": {
            str(d): {
                "epoch": a.epoch,
                "valid_ndcg@10": a.valid_ndcg,
                "hybrid_weight": a.hybrid_weight,
                "rare_weight": a.rare_weight,
                "cf_weights": a.cf_weights,
                "cold_weight": a.cold_weight,
                "popularity_weight": a.popularity_weight,
                "bias_shrink": a.bias_shrink,
                "choices": a.choices,
                "hybrid_valid_ndcg@10": a.hybrid_ndcg,
                "zero_shot_valid_ndcg@10": a.zero_shot_ndcg,
                "seconds": round(a.seconds, 1),
            }
            for d, a in adapter.domains.items()
        },
        "dropped": adapter.dropped,
    }
    if adapter.sample is not None:  # only then: an adapter of every user is stored as before
        meta["sample"] = adapter.sample.__dict__
    return meta


def adapter_from_stored(meta: dict[str, Any], payload: bytes) -> TrainedAdapter:
    """The adapter back from `adapter_meta` and `adapter_bytes`."""
    arrays = np.load(io.BytesIO(payload))
    domains = {}
    for key, info in meta["domains"].items():
        d = int(key)
        domains[d] = DomainAdapter(
            domain=d,
            w_src=arrays[f"{d}/w_src"],
            w_same=arrays[f"{d}/w_same"],
            proj=arrays[f"{d}/proj"],
            offsets=_get_rows(arrays, f"{d}/offsets", len(arrays["seen"])),
            bias=arrays[f"{d}/bias"],
            inputs=(
                _get_rows(arrays, f"{d}/inputs", len(arrays["seen"]))
                if f"{d}/inputs" in arrays.files
                else None
            ),
            epoch=info["epoch"],
            valid_ndcg=info["valid_ndcg@10"],
            hybrid_weight=info["hybrid_weight"],
            seconds=info.get("seconds", 0.0),
            hybrid_ndcg=info.get("hybrid_valid_ndcg@10", {}),
            zero_shot_ndcg=info.get("zero_shot_valid_ndcg@10", {}),
            rare_weight=info.get("rare_weight"),
            cf_weights=info.get("cf_weights") or _legacy_cf(info.get("two_hop_weight", {})),
            cold_weight=info.get("cold_weight", {}),
            popularity_weight=info.get("popularity_weight", {}),
            bias_shrink=info.get("bias_shrink", {}),
            choices=info.get("choices", {}),
        )
    return TrainedAdapter(
        model=meta["model"],
        config=AdapterConfig(**meta["config"]),
        domains=domains,
        domain_names=tuple(meta["domain_names"]),
        item_ids=list(meta["item_ids"]),
        seen=arrays["seen"],
        train_pairs=int(meta["train_pairs"]),
        seconds=float(meta["seconds"]),
        dropped=dict(meta.get("dropped", {})),
        counts=arrays["counts"].astype(np.int64) if "counts" in arrays.files else None,
        sample=UserSample(**meta["sample"]) if "sample" in meta else None,
    )


def _legacy_cf(two_hop_weight: dict[str, float]) -> dict[str, dict[str, float]]:
    """An adapter stored before the parts were chosen: item-kNN plus its walk's weight."""
    return {
        s: {"itemknn": 1.0, "walk": w} if w else {"itemknn": 1.0} for s, w in two_hop_weight.items()
    }


def _put_rows(arrays: dict[str, np.ndarray], name: str, matrix: np.ndarray) -> None:
    """The non-zero rows of `matrix` as float16, and their indices."""
    rows = np.flatnonzero(np.any(matrix != 0, axis=1)).astype(np.int32)
    arrays[name] = matrix[rows].astype(np.float16)
    arrays[f"{name}_rows"] = rows


def _get_rows(arrays: Any, name: str, n_items: int) -> np.ndarray:
    """The learned rows back as a dense matrix. Rows stored as float16 stay float16 (half the
    memory; every float16 is exactly a float32, so scores are the same)."""
    values = np.asarray(arrays[name])
    if f"{name}_rows" not in arrays.files:  # stored dense by an earlier version
        return values.astype(np.float32)
    out = np.zeros((n_items, values.shape[1]), values.dtype)
    out[arrays[f"{name}_rows"]] = values
    return out
