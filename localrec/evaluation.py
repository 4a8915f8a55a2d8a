"""`localrec eval`: baselines and localrec's user representations on one protocol, one run.

The candidates, tie-break and metrics come from `protocol`; this module builds the
scorers. Item vectors of a sequence dataset are cached in a localrec database under
$LOCALREC_HOME/datasets, so the next run encodes nothing; history-text vectors are cached
there too, keyed by the text's content hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .baselines import (
    ItemKNNScorer,
    PopularityScorer,
    RandomScorer,
    TfidfScorer,
    TwoHopScorer,
)
from .comparison import paired_differences, require_method
from .dataset import SequenceDataset, load_dataset
from .db import Store
from .encode import content_hash, encode_items
from .errors import DatasetError, ModelNotPulled
from .paths import home_dir
from .profiles import (
    MAX_SIM_HALF_LIFE,
    MAX_SIM_RECENT,
    MEAN_HALF_LIFE,
    hybrid_blend,
    recency_decay,
)
from .protocol import SETTINGS, EvalReport, Scorer, evaluate
from .registry import ModelSpec, load_registry
from .text import HistoryEvent, user_history_text

__all__ = [
    "EMBEDDING_METHODS",
    "CachedDataset",
    "EmbeddingScorer",
    "dataset_store",
    "db_as_dataset",
    "evaluate_database",
    "evaluate_dataset",
    "load_cached_dataset",
    "run_eval",
]

EMBEDDING_METHODS = ("history-text", "item-mean", "hybrid", "max-sim")
IntArray = npt.NDArray[np.int64]
ItemArray = npt.NDArray[np.integer[Any]]
# Recency of the history text: what `recommend` uses to order and trim it.
HALF_LIFE = 10.0


def dataset_store(dataset: SequenceDataset) -> Store:
    """The cache database beside a dataset: its items (for vectors), keyed by items.jsonl."""
    digest = hashlib.sha256((dataset.root / "items.jsonl").read_bytes()).hexdigest()[:16]
    path = home_dir() / "datasets" / f"{dataset.root.name}-{digest}.db"
    store = Store(path)
    if store.stats()["items_total"] != dataset.n_items:
        from .ingest import add_items

        add_items(
            store,
            (
                {
                    "id": str(i),
                    "domain": dataset.domain_names[dataset.domains[i]],
                    "title": dataset.item_text(i),
                }
                for i in range(dataset.n_items)
            ),
            source=str(dataset.root / "items.jsonl"),
        )
    return store


def _aligned_matrix(store: Store, model: str, index: dict[str, int], dim: int) -> np.ndarray:
    """Item vectors in dataset order; `index` maps the store's item ids to dataset indices."""
    stored = store.item_matrix(model, None, dim=dim)
    rows = [(index[i], r) for r, i in enumerate(stored.ids) if i in index]
    matrix = np.zeros((len(index), dim), dtype=np.float32)
    if rows:
        targets, sources = zip(*rows, strict=True)
        matrix[list(targets)] = stored.matrix[list(sources)]
    return matrix


@dataclass(frozen=True)
class CachedDataset:
    """A sequence dataset and one model's item vectors from the cache `eval` fills."""

    spec: ModelSpec
    dataset: SequenceDataset
    vectors: np.ndarray  # (n_items, dim), dataset order; zero rows for items not encoded
    ids: list[str]  # the cache's item ids, in dataset order

    @property
    def complete(self) -> bool:
        return bool(self.vectors.any(axis=1).all())


def load_cached_dataset(path: Path, model: str | None = None) -> CachedDataset:
    """The dataset at `path` with the vectors a `localrec eval` of it cached (nothing is
    encoded here: items without a vector get a zero row, see `complete`)."""
    from .model_cache import resolve_model

    spec, _ = resolve_model(model)
    dataset, store, index = dataset_with_store(Path(path))
    with store:
        vectors = _aligned_matrix(store, spec.name, index, spec.dim)
    return CachedDataset(spec, dataset, vectors, sorted(index, key=index.__getitem__))


@dataclass
class EmbeddingScorer:
    """A localrec user representation over frozen item vectors, as a protocol scorer."""

    name: str
    method: str
    vectors: np.ndarray  # (n_items, dim), unit rows, dataset order
    domains: np.ndarray
    text_vectors: Callable[[Sequence[ItemArray]], np.ndarray] | None = None
    half_life: float = MEAN_HALF_LIFE

    def _weights(self, n: int) -> np.ndarray:
        w: np.ndarray = np.power(0.5, np.arange(n - 1, -1, -1) / self.half_life)
        normalised: np.ndarray = w / w.sum()
        return normalised

    def user_vectors(self, histories: Sequence[ItemArray]) -> np.ndarray:
        """One vector per history: the weighted item mean, or the embedded history text."""
        if self.method == "history-text":
            assert self.text_vectors is not None
            text: np.ndarray = self.text_vectors(histories)
            return text
        users = np.zeros((len(histories), self.vectors.shape[1]), dtype=np.float32)
        for i, h in enumerate(histories):
            if len(h):
                users[i] = self._weights(len(h)) @ self.vectors[h]
        users /= np.maximum(np.linalg.norm(users, axis=1, keepdims=True), 1e-12)
        return users

    def _max_sim(self, histories: Sequence[ItemArray], candidates: IntArray) -> np.ndarray:
        out = np.zeros(candidates.shape, dtype=np.float32)
        for i, h in enumerate(histories):
            if len(h):
                recent = self.vectors[h[-MAX_SIM_RECENT:]]
                decay = recency_decay(len(recent), MAX_SIM_HALF_LIFE).astype(np.float32)
                out[i] = ((self.vectors[candidates[i]] @ recent.T) * decay).max(axis=1)
        return out

    def score(
        self, histories: Sequence[ItemArray], candidates: IntArray, target_domain: int
    ) -> Any:
        if self.method == "max-sim":
            return self._max_sim(histories, candidates)
        cosines = self._cosines(histories, candidates, target_domain)
        if self.method == "hybrid":
            return hybrid_blend(self._max_sim(histories, candidates), cosines)
        return cosines

    def _cosines(
        self, histories: Sequence[ItemArray], candidates: IntArray, target_domain: int
    ) -> np.ndarray:
        users = self.user_vectors(histories)
        # Score the whole domain once per chunk, then pick the candidates: far cheaper than
        # gathering (cases x candidates x dim) vectors.
        items = np.flatnonzero(self.domains == target_domain)
        position = np.full(len(self.vectors), -1, dtype=np.int64)
        position[items] = np.arange(len(items))
        block = users @ self.vectors[items].T
        picked: np.ndarray = np.take_along_axis(block, position[candidates], axis=1)
        return picked


class HistoryTextCache:
    """History texts embedded as queries, cached in the store by content hash."""

    def __init__(self, store: Store, encoder: Any, titles: Sequence[str]) -> None:
        self.store = store
        self.encoder = encoder
        self.titles = titles
        self.spec: ModelSpec = encoder.spec

    def text(self, history: ItemArray) -> str:
        events = [HistoryEvent(self.titles[int(i)], "purchase") for i in history]
        return user_history_text(
            events,
            max_tokens=self.encoder.max_tokens,
            count_tokens=self.encoder.count_tokens,
            half_life=HALF_LIFE,
        )

    def __call__(self, histories: Sequence[ItemArray]) -> np.ndarray:
        out = np.zeros((len(histories), self.spec.dim), dtype=np.float32)
        texts = [self.text(h) if len(h) else "" for h in histories]
        digests = [content_hash(self.spec.name, self.spec.query_prefix, t) for t in texts]
        missing: dict[str, str] = {}
        for i, (t, d) in enumerate(zip(texts, digests, strict=True)):
            if not t:
                continue
            cached = self.store.user_vector(d, self.spec.name, d)
            if cached is None:
                missing[d] = t
            else:
                out[i] = cached
        if missing:
            keys = list(missing)
            vectors = self.encoder.encode([missing[k] for k in keys], query=True)
            with self.store.write() as conn:
                self.store.put_vectors(conn, self.spec.name, keys, keys, vectors, kind="user")
            fresh = dict(zip(keys, vectors, strict=True))
            for i, d in enumerate(digests):
                if d in fresh:
                    out[i] = fresh[d]
        return out


def adapter_scorers(
    store: Store,
    spec: ModelSpec,
    vectors: np.ndarray,
    dataset: SequenceDataset,
    item_index: dict[str, int],
    suffix: str,
    knn: ItemKNNScorer | None = None,
) -> list[Scorer]:
    """The tuned adapter and its hybrid with collaborative filtering (item-kNN and its
    two-step walk, `knn` if the run has built it), when `localrec tune` has stored one."""
    from .adapter import scorers_for

    zero_shot = EmbeddingScorer("zero-shot", "hybrid", vectors, dataset.domains)
    found: list[Scorer] = scorers_for(
        store, spec.name, vectors, dataset, item_index, suffix, fallback=zero_shot, knn=knn
    )
    return found


def models_on_disk(names: Sequence[str] | None) -> list[ModelSpec]:
    from .model_cache import list_models

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
    knn = ItemKNNScorer(dataset.train, dataset.n_items)
    return [
        RandomScorer(seed=0),
        PopularityScorer(dataset.train, dataset.n_items),
        knn,
        TwoHopScorer(knn),
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
) -> EvalReport:
    """Every baseline and every localrec method, for each model on disk, in one protocol run.

    `store` holds (or receives) the item vectors; for a sequence dataset it is the cache
    from `dataset_store`, for a database the database itself. With `compare`, the report
    also holds every other method's paired NDCG@10 difference from that one
    (`comparison.paired_differences`); the name is checked before any case is scored.
    """
    from .encoder import open_encoder

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
    # The baseline row's item-kNN (and its walk, once built) serves the hybrid rows too.
    knn = next(s for s in scorers if isinstance(s, ItemKNNScorer))
    specs = models_on_disk(models)
    default = load_registry().default
    encoders = []
    for spec in specs:
        encoder = open_encoder(spec.name)
        encoders.append(encoder)
        encode_items(store, encoder, progress=encode_progress)
        vectors = _aligned_matrix(store, spec.name, item_index, spec.dim)
        texts = HistoryTextCache(store, encoder, dataset.titles)
        suffix = "" if spec.name == default or len(specs) == 1 else f"@{spec.name}"
        tuned = (
            adapter_scorers(store, spec, vectors, dataset, item_index, suffix, knn)
            if adapters
            else []
        )
        for method in methods:
            # With an adapter, "hybrid" is the tuned model blended with CF (the
            # product default); the zero-shot text + mean blend keeps a row of its own.
            label = "zero-shot-hybrid" if method == "hybrid" and tuned else method
            scorers.append(
                EmbeddingScorer(
                    f"localrec:{label}{suffix}",
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


def db_as_dataset(
    store: Store, domain: str | None = None, hold_out: int = 1
) -> tuple[SequenceDataset, dict[str, int]]:
    """A database's own events as a leave-last-out dataset: each user's last event is held out.

    With `hold_out=2` the held-out case ends at the second-to-last event and neither of the
    last two is trained on: the split `tune` chooses its epoch on, so that `eval` on the
    last events afterwards is not judged on data the adapter was fitted or chosen on.
    Item ids in the returned dataset are the rows of the database's items, in order; the
    database serves as its own vector store (the cache ids are the item ids).
    """
    rows = list(store.iter_items())
    if not rows:
        raise DatasetError(f"{store.path}: the database has no items")
    index = {r.id: i for i, r in enumerate(rows)}
    names = tuple(dict.fromkeys(r.domain for r in rows))
    domain_of = {n: i for i, n in enumerate(names)}
    sequences = store.user_sequences()
    train, test = [], []
    for events in sequences.values():
        seq = np.asarray([index[item] for item, _, _ in events if item in index], dtype=np.int32)
        case = seq[: len(seq) - hold_out + 1]
        if len(case) >= 2 and (domain is None or rows[case[-1]].domain == domain):
            test.append(case)
            train.append(seq[: len(seq) - hold_out])
        else:
            # A user too short to hold out from still never trains on their last event.
            train.append(seq[:-1] if hold_out > 1 and len(seq) >= 2 else seq)
    if not test:
        raise DatasetError(
            f"{store.path}: no user has two or more events"
            + (f" ending in {domain!r}" if domain else "")
            + "; leave-last-out needs a history and a held-out event"
        )
    dataset = SequenceDataset(
        root=Path(store.path),
        item_ids=np.arange(len(rows), dtype=np.int64),
        domains=np.asarray([domain_of[r.domain] for r in rows], dtype=np.int8),
        domain_names=names,
        titles=[r.title for r in rows],
        attributes=["" for _ in rows],
        train=train,
        valid=[],
        test=test,
        train_files=("events",),
    )
    return dataset, index


def dataset_with_store(path: Path) -> tuple[SequenceDataset, Store, dict[str, int]]:
    """A sequence dataset, its vector cache and the cache's id-to-index map."""
    dataset = load_dataset(path)
    return dataset, dataset_store(dataset), {str(i): i for i in range(dataset.n_items)}


def evaluate_dataset(path: Path | str, **options: Any) -> EvalReport:
    """`localrec eval DATASET_DIR`: every baseline and localrec method on a sequence dataset
    in the Food-Kitchen layout. `options` are `run_eval`'s (models, settings, n_negatives,
    seed, full, split, adapters, progress callbacks). Vectors are cached for later runs."""
    dataset, store, index = dataset_with_store(Path(path))
    with store:
        return run_eval(dataset, store=store, item_index=index, **options)


def evaluate_database(store: Store, domain: str | None = None, **options: Any) -> EvalReport:
    """`localrec --db X eval`: the database's own events, each user's last one held out
    (only users whose last event is in `domain`, if given). Vectors missing for a model
    on disk are encoded into the database. `options` as for `evaluate_dataset`, but the
    split is always the held-out last events."""
    if domain is not None:
        store.require_domain(domain)
    dataset, index = db_as_dataset(store, domain)
    return run_eval(dataset, store=store, item_index=index, **{**options, "split": "test"})
