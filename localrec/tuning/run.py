"""`localrec tune`: train the adapter on a dataset's training files or a database's events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from localrec.data.dataset import SequenceDataset
from localrec.data.loading import aligned_matrix, dataset_with_store, db_as_dataset
from localrec.data.protocol import RARE_TARGET_MAX
from localrec.embedding.loader import open_encoder
from localrec.models.cache import resolve_model
from localrec.paths import as_path
from localrec.scoring.adapter import AdapterConfig, TrainedAdapter
from localrec.store.db import Store, require_store
from localrec.store.item_vectors import encode_items
from localrec.tuning.storage import store_adapter
from localrec.tuning.train import train_adapter

__all__ = ["tune_database", "tune_dataset", "tune_summary"]

EpochCallback = Callable[[str, int, float, dict[str, float]], None]
BatchCallback = Callable[[int, int], None]


def _tune(
    dataset: SequenceDataset,
    store: Store,
    item_index: dict[str, int],
    model: str | None,
    config: AdapterConfig,
    on_epoch: EpochCallback | None,
    on_batch: BatchCallback | None,
    encode_progress: Callable[[int, int], None] | None,
) -> TrainedAdapter:
    spec, _ = resolve_model(model)
    with open_encoder(spec.name) as encoder:
        encode_items(store, encoder, progress=encode_progress)
    vectors = aligned_matrix(store, spec.name, item_index, spec.dim)
    ids = sorted(item_index, key=item_index.__getitem__)
    adapter = train_adapter(dataset, vectors, spec.name, ids, config, on_epoch, on_batch)
    store_adapter(store, adapter)
    return adapter


def tune_dataset(
    path: Path,
    model: str | None = None,
    config: AdapterConfig | None = None,
    *,
    on_epoch: EpochCallback | None = None,
    on_batch: BatchCallback | None = None,
    encode_progress: Callable[[int, int], None] | None = None,
) -> TrainedAdapter:
    """`localrec tune DATASET_DIR`: train on the dataset's training files, choose the epoch
    and the hybrid's weights on its validation split, and keep the adapter with the
    dataset's cached vectors (under `$LOCALREC_HOME/datasets`), where `eval` and
    `pack build` find it.

    Args:
        path: The dataset directory (the Food-Kitchen layout, as for `evaluate_dataset`).
        model: The embedding model (default: the default model); its vectors are
            encoded first where missing.
        config: The hyper-parameters (default: `AdapterConfig()`).
        on_epoch: Called as `on_epoch(domain, epoch, mean_ndcg, ndcg_by_setting)` after
            each epoch, with validation NDCG@10.
        on_batch: Called as `on_batch(step, steps)` after each training step.
        encode_progress: Called as `encode_progress(done, total)` while items are encoded.

    Raises:
        TrainingError: No domain could be kept (the reasons are in the message); nothing
            is stored then.
    """
    dataset, store, index = dataset_with_store(as_path(path, "the dataset directory"))
    with store:
        return _tune(
            dataset,
            store,
            index,
            model,
            config or AdapterConfig(),
            on_epoch,
            on_batch,
            encode_progress,
        )


def tune_database(
    store: Store,
    model: str | None = None,
    config: AdapterConfig | None = None,
    *,
    on_epoch: EpochCallback | None = None,
    on_batch: BatchCallback | None = None,
    encode_progress: Callable[[int, int], None] | None = None,
) -> TrainedAdapter:
    """`localrec --db X tune`: train on a database's events, and store the adapter in it;
    each user's second-to-last event chooses the epoch and the weights.

    The last events are left out of training and choice alike, so that `eval` on them
    afterwards measures the adapter honestly.

    Args:
        store: The database.
        model: The embedding model (default: the default model).
        config: The hyper-parameters (default: `AdapterConfig()`).
        on_epoch: As for `tune_dataset`.
        on_batch: As for `tune_dataset`.
        encode_progress: As for `tune_dataset`.
    """
    dataset, index = db_as_dataset(require_store(store), hold_out=2)
    dataset = replace(dataset, valid=dataset.test, test=[])
    return _tune(
        dataset, store, index, model, config or AdapterConfig(), on_epoch, on_batch, encode_progress
    )


def tune_summary(adapter: TrainedAdapter) -> list[str]:
    """What a `tune` run chose, one line per domain and a last line on the training: the
    epoch, the validation NDCG@10 and the blend weights of the hybrid (what `localrec
    tune` prints)."""
    lines = []
    for d, a in adapter.domains.items():
        weights = _per_setting(a.hybrid_weight)
        if a.rare_weight is not None:
            weights += f", items seen 1-{RARE_TARGET_MAX} times {a.rare_weight:g}"
        hybrid = ", ".join(
            f"{k} {100 * v:.2f}% (zero-shot {100 * a.zero_shot_ndcg[k]:.2f}%)"
            for k, v in a.hybrid_ndcg.items()
        )
        lines.append(
            f"{adapter.domain_names[d]}: epoch {a.epoch}, valid NDCG@10 "
            + ", ".join(f"{k} {100 * v:.2f}%" for k, v in a.valid_ndcg.items())
            + f"; collaborative weight {weights}; two-hop weight "
            + f"{_per_setting(a.two_hop_weight)}; cold users' text weight "
            + f"{_per_setting(a.cold_weight)}; hybrid {hybrid}"
        )
    lines += [
        f"{name}: no adapter kept, zero-shot serves it: {why}"
        for name, why in adapter.dropped.items()
    ]
    lines.append(
        f"trained on {adapter.train_pairs} pairs in {adapter.seconds:.0f} s (model {adapter.model})"
    )
    return lines


def _per_setting(weights: dict[str, float]) -> str:
    return ", ".join(f"{setting} {weight:g}" for setting, weight in weights.items())
