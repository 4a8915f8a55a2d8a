"""`localrec eval`: baselines and localrec's user representations on one protocol, one run.

The candidates, tie-break and metrics come from `protocol`; the rows are the baselines
and `localrec.evaluation.scorers`. Item vectors of a sequence dataset are cached in a
localrec database under $LOCALREC_HOME/datasets, so the next run encodes nothing;
history-text vectors are cached there too, keyed by the text's content hash. A user's own
database gets its missing item vectors, but keeps no history-text vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from localrec.data.dataset import SequenceDataset
from localrec.data.loading import (
    aligned_matrix,
    dataset_item_ids,
    dataset_with_store,
    db_as_dataset,
)
from localrec.data.protocol import SETTINGS, Scorer
from localrec.embedding.loader import open_encoder
from localrec.errors import DatasetError, InputError, ModelNotPulled
from localrec.evaluation.comparison import paired_differences, require_method
from localrec.evaluation.protocol import evaluate
from localrec.evaluation.results import EvalReport
from localrec.evaluation.scorers import (
    EmbeddingScorer,
    HistoryTextCache,
    adapter_scorers,
    pack_scorers,
    pack_vectors,
)
from localrec.models.cache import list_models
from localrec.models.registry import ModelSpec, load_registry
from localrec.packs.pack import Pack
from localrec.paths import as_path
from localrec.scoring.item_models import rp3beta_scorer
from localrec.scoring.itemknn import (
    ItemItemScorer,
    ItemKNNScorer,
    PopularityScorer,
    RandomScorer,
    TfidfScorer,
    TwoHopScorer,
    cooccurrence_scorer,
)
from localrec.store.db import Store, require_store
from localrec.store.item_vectors import encode_items

__all__ = [
    "EMBEDDING_METHODS",
    "evaluate_database",
    "evaluate_dataset",
    "run_eval",
]

EMBEDDING_METHODS = ("history-text", "item-mean", "zero-shot", "max-sim")


def models_on_disk(names: Sequence[str] | None) -> list[ModelSpec]:
    registry = load_registry()
    if names:
        for name in names:
            registry.get(name)  # unknown names list the known ones
        chosen = [row for row in list_models(registry) if row.spec.name in names]
        for row in chosen:
            if row.path is None:
                raise ModelNotPulled(
                    f"model {row.spec.name!r} is not on disk yet; run `localrec models pull "
                    f"{row.spec.name}`"
                )
        return [row.spec for row in chosen]
    on_disk = [row.spec for row in list_models(registry) if row.path is not None]
    if not on_disk:
        raise ModelNotPulled("no model is on disk yet; run `localrec models pull`")
    return on_disk


def baseline_scorers(dataset: SequenceDataset) -> list[Scorer]:
    """The baselines of every run: random, popularity, item-kNN and its walk, plain
    co-occurrence, RP3beta and TF-IDF. (EASE is not among them: its dense items x items
    inverse does not fit this kind of machine for a 27,637-item domain; docs/quality.md.)"""
    knn = ItemKNNScorer(dataset.train, dataset.n_items)
    return [
        RandomScorer(seed=0),
        PopularityScorer(dataset.train, dataset.n_items),
        knn,
        TwoHopScorer(knn),
        cooccurrence_scorer(dataset.train, dataset.n_items),
        rp3beta_scorer(dataset.train, dataset.n_items),
        TfidfScorer(dataset.item_texts()),
    ]


def run_eval(
    dataset: SequenceDataset,
    *,
    store: Store,
    item_index: dict[str, int],
    models: Sequence[str] | None = None,
    settings: Sequence[str] = SETTINGS,
    methods: Sequence[str] = EMBEDDING_METHODS,
    n_negatives: int = 999,
    seed: int = 42,
    full: bool = False,
    split: str = "test",
    encode_progress: Callable[[int, int], None] | None = None,
    progress: Callable[[int], None] | None = None,
    adapters: bool = True,
    total: Callable[[int], None] | None = None,
    compare: str | None = None,
    cache_history_text: bool = False,
    pack: Pack | None = None,
    pack_ids: dict[str, int] | None = None,
) -> EvalReport:
    """Every baseline and every localrec method, for each model on disk, in one protocol run.

    `store` holds (or receives) the item vectors; for a sequence dataset it is the cache
    from `dataset_store`, for a database the database itself. With `compare`, the report
    also holds every other method's paired NDCG@10 difference from that one
    (`comparison.paired_differences`); the name is checked before any case is scored.
    With `cache_history_text`, history-text vectors are kept in `store` for later runs
    (for a dataset's cache; a user's database keeps none). With a `pack`, every localrec
    row ranks with the pack's vectors, adapter and neighbours, through the code that
    serves `recommend` from it; the baselines still learn from the training sequences.
    `pack_ids` maps the pack's item ids to dataset indices (default: `item_index`).
    """
    # Say so before minutes of encoding, not after.
    if not (dataset.valid if split == "valid" else dataset.test):
        raise DatasetError(f"{dataset.root}: the {split} split is empty or missing")
    if not full:
        for d in range(dataset.n_domains):
            size = len(dataset.items_of_domain(d))
            if size < n_negatives + 1:
                raise DatasetError(
                    f"{dataset.root}: domain {dataset.domain_names[d]!r} has {size} items, too "
                    f"few for {n_negatives} negatives plus the target; use --negatives "
                    f"{size - 1} or fewer, or --full"
                )
    scorers: list[Scorer] = baseline_scorers(dataset)
    # The baseline rows' item-kNN (and its walk, once built), co-occurrence and RP3beta
    # serve the hybrid rows too.
    knn = next(s for s in scorers if isinstance(s, ItemKNNScorer))
    others = {s.name: s for s in scorers if isinstance(s, ItemItemScorer)}
    if pack is not None and models and list(models) != [pack.model]:
        raise InputError(f"{pack.path} was built with model {pack.model!r}; --model must name it")
    specs = models_on_disk([pack.model] if pack is not None else models)
    default = load_registry().default
    encoders = []
    for spec in specs:
        encoder = open_encoder(spec.name)
        encoders.append(encoder)
        suffix = "" if spec.name == default or len(specs) == 1 else f"@{spec.name}"
        if pack is None:
            encode_items(store, encoder, progress=encode_progress)
            vectors = aligned_matrix(store, spec.name, item_index, spec.dim)
            tuned = (
                adapter_scorers(store, spec, vectors, dataset, item_index, suffix, knn, others)
                if adapters
                else []
            )
        else:
            ids = pack_ids or item_index
            vectors = pack_vectors(pack, ids)
            tuned = pack_scorers(pack, vectors, dataset, ids) if adapters else []
        texts = HistoryTextCache(store if cache_history_text else None, encoder, dataset.titles)
        for method in methods:
            scorers.append(
                EmbeddingScorer(
                    f"localrec:{method}{suffix}",
                    method,
                    vectors,
                    dataset.domains,
                    texts if method == "history-text" else None,
                )
            )
        scorers.extend(tuned)
    try:
        if compare is not None:
            require_method(compare, [s.name for s in scorers])
        if total is not None:
            sequences = dataset.valid if split == "valid" else dataset.test
            total(len(settings) * len(scorers) * len(sequences))
        report = evaluate(
            dataset,
            split=split,  # type: ignore[arg-type]
            settings=settings,  # type: ignore[arg-type]
            scorers=scorers,
            n_negatives=n_negatives,
            seed=seed,
            full=full,
            progress=progress,
        )
        if compare is None:
            return report
        return replace(report, comparisons=paired_differences(report, compare))
    finally:
        for encoder in encoders:
            encoder.close()


def evaluate_dataset(path: Path | str, **options: Any) -> EvalReport:
    """`localrec eval DATASET_DIR`: every baseline and localrec method on a sequence dataset
    in the Food-Kitchen layout. Vectors are cached for later runs.

    Args:
        path: The dataset directory (`items.jsonl`, `train_overlap.txt`, optionally
            `train_A.txt`/`train_B.txt`, `valid.txt`, `test.txt`).
        **options: Of the protocol run: `models` (names; default: every model on disk),
            `settings` ("mixed", "cross"), `n_negatives` (999), `seed` (42), `full` (rank
            the whole domain), `split` ("test" or "valid"), `adapters` (False leaves out
            the tuned rows), `compare` (a method name: paired differences against it),
            `pack` (an open `Pack` that serves every localrec row), and the progress
            callbacks `encode_progress(done, total)`, `total(cases)`, `progress(done)`.

    Returns:
        The report: NDCG@10, hit rates and MRR per method, setting and domain.
    """
    dataset, store, index = dataset_with_store(as_path(path, "the dataset directory"))
    with store:
        public = dataset_item_ids(dataset, index)
        options = {
            "cache_history_text": True,
            "pack_ids": {public[i]: n for i, n in index.items()},
            **options,
        }
        return run_eval(dataset, store=store, item_index=index, **options)


def evaluate_database(store: Store, domain: str | None = None, **options: Any) -> EvalReport:
    """`localrec --db X eval`: the database's own events, each user's last one held out.
    Vectors missing for a model on disk are encoded into the database.

    Args:
        store: The database.
        domain: Only users whose last event is in this domain.
        **options: As for `evaluate_dataset`, but the split is always the held-out last
            events, and history-text vectors are not stored.
    """
    require_store(store)
    if domain is not None:
        store.require_domain(domain)
    dataset, index = db_as_dataset(store, domain)
    return run_eval(
        dataset,
        store=store,
        item_index=index,
        **{**options, "split": "test", "cache_history_text": False},
    )
