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
from localrec.tuning.selection import Validation
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
    config: AdapterConfig | None,
    callbacks: tuple[EpochCallback | None, BatchCallback | None, Callable[[int, int], None] | None],
    held_out: bool,
) -> TrainedAdapter:
    """Train and store the adapter; with `held_out`, choose on the dataset's validation
    split plus a case cut from each training user's sequence (a database's validation
    cases already are: every user's second-to-last event)."""
    on_epoch, on_batch, encode_progress = callbacks
    config = config or AdapterConfig()
    spec, _ = resolve_model(model)
    with open_encoder(spec.name) as encoder:
        encode_items(store, encoder, progress=encode_progress)
    vectors = aligned_matrix(store, spec.name, item_index, spec.dim)
    ids = sorted(item_index, key=item_index.__getitem__)
    validation = Validation.held_out_from(dataset, vectors, config) if held_out else None
    adapter = train_adapter(
        validation.dataset if validation else dataset,
        vectors,
        spec.name,
        ids,
        config,
        on_epoch,
        on_batch,
        validation=validation,
    )
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
    sample_users: int | None = None,
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
        sample_users: Train, and choose, on a uniform sample of this many training users
            (their whole sequences), drawn with `config.seed`; the others' lines are not
            read. Its validation cases are the dataset's valid split and those cut from
            the sampled users. None (the default): every training user.

    Raises:
        TrainingError: No domain could be kept (the reasons are in the message); nothing
            is stored then.
        InputError: `sample_users` is below 1 or above the number of training users.
    """
    config = config or AdapterConfig()
    dataset, store, index = dataset_with_store(
        as_path(path, "the dataset directory"), sample_users, config.seed
    )
    with store:
        callbacks = (on_epoch, on_batch, encode_progress)
        return _tune(dataset, store, index, model, config, callbacks, held_out=True)


def tune_database(
    store: Store,
    model: str | None = None,
    config: AdapterConfig | None = None,
    *,
    on_epoch: EpochCallback | None = None,
    on_batch: BatchCallback | None = None,
    encode_progress: Callable[[int, int], None] | None = None,
    sample_users: int | None = None,
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
        sample_users: Train, and choose, on a uniform sample of this many users (drawn
            with `config.seed`): only their events are read, and only their
            second-to-last events are validation cases.
    """
    config = config or AdapterConfig()
    dataset, index = db_as_dataset(
        require_store(store), hold_out=2, sample_users=sample_users, seed=config.seed
    )
    dataset = replace(dataset, valid=dataset.test, test=[])
    callbacks = (on_epoch, on_batch, encode_progress)
    return _tune(dataset, store, index, model, config, callbacks, held_out=False)


def tune_summary(adapter: TrainedAdapter) -> list[str]:
    """What a `tune` run chose (what `localrec tune` prints): per domain its epoch and
    rare weight, then per setting the collaborative parts and weights, the adapter's
    weight, the share of its item bias left out, popularity's weight, the cold users' text
    weight, and the validation figures they were chosen on; a last line on the training."""
    lines = []
    for d, a in adapter.domains.items():
        name = adapter.domain_names[d]
        rare = "none" if a.rare_weight is None else f"{a.rare_weight:g}"
        lines.append(
            f"{name}: epoch {a.epoch}, valid NDCG@10 of the adapter alone "
            + ", ".join(f"{k} {100 * v:.2f}%" for k, v in a.valid_ndcg.items())
            + f"; collaborative weight for items seen 1-{RARE_TARGET_MAX} times {rare}"
        )
        for setting, ndcg in a.hybrid_ndcg.items():
            parts = " + ".join(f"{w:g} {part}" for part, w in a.cf_weights.get(setting, {}).items())
            notes = a.choices.get(setting, {})
            components = ", ".join(
                f"{key[5:]} {100 * value:.2f}%"
                for key, value in notes.items()
                if key.startswith("ndcg ")
            )
            line = (
                f"  {setting}: CF = {parts or '1 itemknn'}; CF weight "
                f"{a.hybrid_weight.get(setting, 0.0):g}, bias left out "
                f"{a.bias_shrink.get(setting, 0.0):g}, popularity weight "
                f"{a.popularity_weight.get(setting, 0.0):g}, cold users' text weight "
                f"{a.cold_weight.get(setting, 0.0):g}; hybrid {100 * ndcg:.2f}% (zero-shot "
                f"{100 * a.zero_shot_ndcg.get(setting, 0.0):.2f}%"
            )
            if notes:
                line += (
                    f"; alone: {components}; coverage@10 {100 * notes['coverage@10']:.1f}% "
                    f"(itemknn {100 * notes['itemknn coverage@10']:.1f}%), hub@10 "
                    f"{100 * notes['hub@10']:.1f}% (itemknn {100 * notes['itemknn hub@10']:.1f}%); "
                    f"{int(notes['cases'])} cases; {_GUARDS[int(notes['guards'])]}"
                )
            lines.append(line + ")")
    lines += [
        f"{name}: no adapter kept, zero-shot serves it: {why}"
        for name, why in adapter.dropped.items()
    ]
    users = ""
    if adapter.sample is not None:
        sample = adapter.sample
        users = f" of a sample of {sample.users} of {sample.of} users (seed {sample.seed})"
    lines.append(
        f"trained on {adapter.train_pairs} pairs{users} in {adapter.seconds:.0f} s "
        f"(model {adapter.model})"
    )
    return lines


_GUARDS = (
    "no blend is above every component alone: the best served",
    "coverage guard not met by any blend above every component alone",
    "above every component alone, coverage not below item-kNN's",
)
