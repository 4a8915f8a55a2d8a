"""localrec's methods as rows of the evaluation protocol: thin wrappers over the scoring
core, so that what `eval` measures is what `recommend` serves."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from localrec.data.dataset import SequenceDataset
from localrec.data.protocol import Scorer
from localrec.embedding.llama_encoder import Encoder
from localrec.errors import PackError
from localrec.models.registry import ModelSpec
from localrec.packs.pack import Pack
from localrec.scoring.adapter import aligned
from localrec.scoring.history import histories_of_rows
from localrec.scoring.hybrid import HybridModel
from localrec.scoring.itemknn import ItemItemScorer, ItemKNNScorer
from localrec.scoring.profiles import MEAN_HALF_LIFE, zero_shot_scores
from localrec.store.db import Store
from localrec.store.item_vectors import content_hash
from localrec.text import HistoryEvent, user_history_text
from localrec.tuning.storage import load_adapter

__all__ = [
    "EmbeddingScorer",
    "HistoryTextCache",
    "HybridRow",
    "TunedRow",
    "adapter_scorers",
    "pack_scorers",
    "pack_vectors",
]

ItemArray = npt.NDArray[np.integer[Any]]
# Recency of the history text: what `recommend` uses to order and trim it.
HALF_LIFE = 10.0


@dataclass
class EmbeddingScorer:
    """A zero-shot user representation over frozen item vectors (`profile_scores`)."""

    name: str
    method: str
    vectors: np.ndarray  # (n_items, dim), unit rows, dataset order
    domains: np.ndarray
    text_vectors: Callable[[Sequence[ItemArray]], np.ndarray] | None = None
    half_life: float = MEAN_HALF_LIFE

    def score(
        self, histories: Sequence[ItemArray], candidates: np.ndarray, target_domain: int
    ) -> np.ndarray:
        text = None
        if self.method == "history-text":
            assert self.text_vectors is not None
            text = self.text_vectors(histories)
        return zero_shot_scores(
            self.method,
            histories_of_rows(histories),
            candidates,
            self.vectors,
            half_life=self.half_life,
            text_vectors=text,
        )


@dataclass
class TunedRow:
    """The tuned adapter alone (zero-shot text where it has no model), as `recommend`
    with user_vector='tuned' ranks."""

    name: str
    model: HybridModel

    def score(
        self, histories: Sequence[ItemArray], candidates: np.ndarray, target_domain: int
    ) -> np.ndarray:
        return self.model.tuned(histories_of_rows(histories), candidates, target_domain)


@dataclass
class HybridRow:
    """The tuned hybrid (`HybridModel.score`): what `recommend` serves by default."""

    name: str
    model: HybridModel

    def score(
        self, histories: Sequence[ItemArray], candidates: np.ndarray, target_domain: int
    ) -> np.ndarray:
        return self.model.score(histories_of_rows(histories), candidates, target_domain)


class HistoryTextCache:
    """History texts embedded as queries, by the text's content hash.

    With a `store` (a sequence dataset's cache database) the vectors are kept in its
    history-text table for later runs. Without one they last for this run only: a user's
    own database keeps no vectors of histories that no stored user owns, so `forget`
    leaves none of a user's behind.
    """

    def __init__(self, store: Store | None, encoder: Encoder, titles: Sequence[str]) -> None:
        self.store = store
        self.encoder = encoder
        self.titles = titles
        self.spec: ModelSpec = encoder.spec
        self._run: dict[str, np.ndarray] = {}

    def text(self, history: ItemArray) -> str:
        events = [HistoryEvent(self.titles[int(i)], "purchase") for i in history]
        return user_history_text(
            events,
            max_tokens=self.encoder.max_tokens,
            count_tokens=self.encoder.count_tokens,
            half_life=HALF_LIFE,
        )

    def _known(self, digests: Sequence[str]) -> dict[str, np.ndarray]:
        if self.store is not None:
            return self.store.history_vectors(self.spec.name, digests)
        return {d: self._run[d] for d in digests if d in self._run}

    def _keep(self, digests: Sequence[str], vectors: np.ndarray) -> None:
        if self.store is not None:
            self.store.put_history_vectors(self.spec.name, digests, vectors)
        else:
            self._run.update(zip(digests, vectors, strict=True))

    def __call__(self, histories: Sequence[ItemArray]) -> np.ndarray:
        out = np.zeros((len(histories), self.spec.dim), dtype=np.float32)
        texts = [self.text(h) if len(h) else "" for h in histories]
        digests = [content_hash(self.spec.name, self.spec.query_prefix, t) for t in texts]
        known = self._known([d for t, d in zip(texts, digests, strict=True) if t])
        missing = {d: t for t, d in zip(texts, digests, strict=True) if t and d not in known}
        if missing:
            keys = list(missing)
            vectors = self.encoder.encode([missing[k] for k in keys], query=True)
            self._keep(keys, vectors)
            known.update(zip(keys, vectors, strict=True))
        for i, (t, d) in enumerate(zip(texts, digests, strict=True)):
            if t:
                out[i] = known[d]
        return out


def adapter_scorers(
    store: Store,
    spec: ModelSpec,
    vectors: np.ndarray,
    dataset: SequenceDataset,
    item_index: dict[str, int],
    suffix: str,
    knn: ItemKNNScorer | None = None,
    others: Mapping[str, ItemItemScorer] | None = None,
) -> list[Scorer]:
    """`localrec:tuned` and `localrec:hybrid` rows, when `localrec tune` has stored an
    adapter: the tuned hybrid over the dataset's catalogue, with its collaborative parts
    over its training sequences (`knn` and `others` if the run has built them)."""
    model = hybrid_model(store, spec, vectors, dataset, item_index, knn, others)
    if model is None:
        return []
    return [
        TunedRow(f"localrec:tuned{suffix}", model),
        HybridRow(f"localrec:hybrid{suffix}", model),
    ]


def hybrid_model(
    store: Store,
    spec: ModelSpec,
    vectors: np.ndarray,
    dataset: SequenceDataset,
    item_index: dict[str, int],
    knn: ItemKNNScorer | None = None,
    others: Mapping[str, ItemItemScorer] | None = None,
) -> HybridModel | None:
    """The stored adapter as a `HybridModel` over the dataset, or None if there is none."""
    adapter = load_adapter(store, spec.name)
    if adapter is None:
        return None
    adapter = aligned(adapter, item_index, vectors)
    return HybridModel.over_sequences(
        adapter, vectors, dataset.domains, dataset.train, knn=knn, others=others
    )


def pack_vectors(pack: Pack, item_index: dict[str, int]) -> np.ndarray:
    """The pack's item vectors in the dataset's order; every dataset item must be packed."""
    missing = [i for i in item_index if i not in pack.index]
    if missing:
        raise PackError(
            f"{pack.path}: {len(missing)} of the dataset's items are not in the pack (such as "
            f"{missing[0]!r}); build the pack from this dataset"
        )
    order = sorted(item_index, key=item_index.__getitem__)
    return pack.vectors[[pack.index[i] for i in order]]


def pack_scorers(
    pack: Pack, vectors: np.ndarray, dataset: SequenceDataset, item_index: dict[str, int]
) -> list[Scorer]:
    """`localrec:tuned` and `localrec:hybrid` served from the pack: `Pack.hybrid`, the model
    `recommend --pack` ranks with."""
    names = [dataset.domain_names[d] for d in dataset.domains]
    model = pack.hybrid(item_index, vectors, names)
    if model is None:
        return []
    return [TunedRow("localrec:tuned", model), HybridRow("localrec:hybrid", model)]
