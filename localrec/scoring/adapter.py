"""The adapter: a small model learned on top of frozen text vectors, per target domain.

    u      = W_src · m_src + W_same · m_same + Σ_j w_j e_j    (d)
    q_i    = P · x_i + o_i                                   (d)
    s(u,i) = u · q_i + b_i

x_i is item i's frozen text vector; m_src and m_same are recency-weighted means of the
history's vectors from other domains and from T (free text counts as another domain), and
Σ_j w_j e_j the same recency weights over learned per-item input vectors e_j
(collaborative: "people who had j"; zero for items never seen in training, so a history
of new items falls back to text alone). o_i is a learned per-item offset, b_i a bias that
starts at log(1 + popularity). Items never seen in training get their bias predicted from
their text vector and no offset. How it is learned is `localrec.tuning`; how it is stored,
`localrec.tuning.storage`; how it is blended with collaborative filtering,
`localrec.scoring.hybrid`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from localrec.data.protocol import RARE_TARGET_MAX
from localrec.data.sampling import UserSample
from localrec.scoring.history import History
from localrec.scoring.history_means import history_weights
from localrec.scoring.select import take_rows

__all__ = [
    "AdapterConfig",
    "DomainAdapter",
    "TrainedAdapter",
    "aligned",
    "predict_unseen_bias",
    "rarely_seen",
]


@dataclass(frozen=True)
class AdapterConfig:
    """Hyper-parameters of `tune`; the defaults were chosen on the Food-Kitchen validation
    split.

    Attributes:
        dim: The dimension d the text vectors are projected to.
        epochs: Epochs at most; the best on the validation split is kept.
        batch_size: Training pairs per Adam step.
        negatives: Uniform negatives of the target's domain per batch.
        learning_rate: Adam's learning rate.
        offset_decay: L2 decay of the learned item offsets and input vectors.
        half_life: Recency half-life, in events, of the history means.
        max_prefix: History events per training pair at most (the most recent).
        max_pairs_per_epoch: An epoch is a random sample of at most this many pairs: big
            domains (kitchen has ~280k) then cost no more per epoch than small ones, and
            more epochs see more of them.
        same_dropout: Share of training pairs whose same-domain history is hidden, so that
            the other-domain projection learns to carry a user who is new to the domain.
        patience: Stop after this many epochs without a better validation score.
        popularity_bias: Start item biases at log(1 + popularity) (True) or at zero.
        id_inputs: Learn an input vector per history item (True) or use the text means
            alone.
        min_pairs: A domain with fewer training pairs ending in it gets no adapter.
        seed: The seed of initialisation and sampling: the same data, seed and BLAS thread
            count give the same bytes.
    """

    dim: int = 64
    epochs: int = 10
    batch_size: int = 512
    negatives: int = 2000
    learning_rate: float = 0.005
    offset_decay: float = 1e-4
    half_life: float = 5.0
    max_prefix: int = 50
    max_pairs_per_epoch: int = 150_000
    same_dropout: float = 0.5
    patience: int = 2
    popularity_bias: bool = True
    id_inputs: bool = True
    min_pairs: int = 300
    seed: int = 0


@dataclass
class DomainAdapter:
    """The learned parameters for one target domain."""

    domain: int
    w_src: np.ndarray
    w_same: np.ndarray
    proj: np.ndarray
    offsets: np.ndarray
    bias: np.ndarray
    inputs: np.ndarray | None = None
    epoch: int = 0
    valid_ndcg: dict[str, float] = field(default_factory=dict)
    hybrid_weight: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    # Validation NDCG@10 of the hybrid, and of zero-shot text that it had to beat.
    hybrid_ndcg: dict[str, float] = field(default_factory=dict)
    zero_shot_ndcg: dict[str, float] = field(default_factory=dict)
    # The collaborative weight for candidates seen 1 to RARE_TARGET_MAX times in training
    # (None: the setting's weight, as for every other candidate).
    rare_weight: float | None = None
    # Per setting, the collaborative parts of the hybrid and their weights, e.g.
    # {"itemknn": 1.0, "walk": 0.5} (`localrec.scoring.hybrid.CF_PARTS`; missing:
    # item-kNN alone).
    cf_weights: dict[str, dict[str, float]] = field(default_factory=dict)
    # Per setting, the weight of zero-shot text in a cold user's hybrid (missing: 0, the
    # adapter alone, as adapters stored before it had).
    cold_weight: dict[str, float] = field(default_factory=dict)
    # Per setting, the weight of standardised log(1 + popularity) in the hybrid (negative:
    # a popular item is pushed down, a guard against hubs; missing: 0).
    popularity_weight: dict[str, float] = field(default_factory=dict)
    # Per setting, how much of the learned item bias the hybrid's adapter part leaves out
    # (0: all of it is kept; 1: none; missing: 0). The bias carries popularity.
    bias_shrink: dict[str, float] = field(default_factory=dict)
    # Per setting, how the validation cases chose (`localrec.tuning.search.Choice.notes`).
    choices: dict[str, dict[str, float]] = field(default_factory=dict)

    def item_reps(self, vectors: np.ndarray, items: np.ndarray) -> np.ndarray:
        reps: np.ndarray = take_rows(vectors, items) @ self.proj.T + self.offsets[items]
        return reps

    def user_reps(
        self, m_src: np.ndarray, m_same: np.ndarray, id_part: np.ndarray | None = None
    ) -> np.ndarray:
        users: np.ndarray = m_src @ self.w_src.T + m_same @ self.w_same.T
        if id_part is not None:
            users = users + id_part
        return users

    def scores(
        self,
        histories: Sequence[History],
        candidates: np.ndarray,
        vectors: np.ndarray,
        item_domains: np.ndarray,
        config: AdapterConfig,
    ) -> np.ndarray:
        """s(u, i) for each history's row of candidates (catalogue rows)."""
        users = self.user_vectors(histories, vectors, item_domains, config)
        gathered = self.candidate_reps(vectors, candidates)
        out: np.ndarray = np.einsum("bd,bcd->bc", users, gathered) + self.bias[candidates]
        return out

    def candidate_reps(self, vectors: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """q_i for each history's row of candidates: (histories, candidates, d)."""
        unique, inverse = np.unique(candidates, return_inverse=True)
        reps = self.item_reps(vectors, unique)
        gathered: np.ndarray = reps[inverse.reshape(candidates.shape)]
        return gathered

    def user_vectors(
        self,
        histories: Sequence[History],
        vectors: np.ndarray,
        item_domains: np.ndarray,
        config: AdapterConfig,
    ) -> np.ndarray:
        """u for each history: its last `max_prefix` events, recency-weighted."""
        weights = history_weights(
            histories, item_domains, self.domain, len(vectors), config.half_life, config.max_prefix
        )
        id_part = None if self.inputs is None else weights.learned(self.inputs)
        return self.user_reps(weights.mean(False, vectors), weights.mean(True, vectors), id_part)


def normalised(
    rows: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray,
    keep: np.ndarray,
    shape: tuple[int, int],
) -> sp.csr_matrix:
    matrix = sp.csr_matrix((weights[keep], (rows[keep], cols[keep])), shape=shape, dtype=np.float64)
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = sp.diags(np.where(sums > 0, 1.0 / np.maximum(sums, 1e-12), 0.0))
    return sp.csr_matrix(scale @ matrix, dtype=np.float32)


@dataclass
class TrainedAdapter:
    """One `DomainAdapter` per target domain, and what is needed to use and store them:
    what `tune_dataset` and `tune_database` return (and store).

    Attributes:
        model: The embedding model whose vectors it was trained on.
        config: The hyper-parameters it was trained with.
        domains: The adapter of each target domain kept, by domain number.
        domain_names: The domains' names, by number.
        item_ids: The catalogue's item ids, in the adapter's row order.
        seen: Whether each item occurs in the training data.
        train_pairs: The number of prefix -> next training pairs.
        seconds: Training time.
        dropped: Domains without an adapter, and why: zero-shot text serves them.
        counts: How often each item occurs in the training data (None: stored by an
            earlier version).
        sample: When it was trained on a sample of the training users (`tune
            --sample-users`): how many of how many, and the seed; else None.
    """

    model: str
    config: AdapterConfig
    domains: dict[int, DomainAdapter]
    domain_names: tuple[str, ...]
    item_ids: list[str]
    seen: np.ndarray
    train_pairs: int
    seconds: float
    dropped: dict[str, str] = field(default_factory=dict)
    counts: np.ndarray | None = None
    sample: UserSample | None = None

    def domain_numbers(self, names: Sequence[str]) -> np.ndarray:
        """Items' domains (by name) in this adapter's numbering, -1 for one it does not know."""
        numbering = {name: d for d, name in enumerate(self.domain_names)}
        return np.array([numbering.get(name, -1) for name in names], dtype=np.int64)

    def cold(self, history: np.ndarray) -> bool:
        """Whether no item of `history` was seen in training: CF and the learned input
        vectors know nothing of this user."""
        return not bool(self.seen[np.asarray(history, dtype=np.int64)].any())

    def rare(self, items: np.ndarray) -> np.ndarray:
        """Which of `items` were seen in training, but rarely (see `rarely_seen`)."""
        if self.counts is None:
            return np.zeros(np.shape(items), dtype=bool)
        return rarely_seen(self.counts[items])

    def scores(
        self,
        histories: Sequence[History],
        candidates: np.ndarray,
        domain: int,
        vectors: np.ndarray,
        item_domains: np.ndarray,
    ) -> np.ndarray:
        return self.domains[domain].scores(
            histories, candidates, vectors, item_domains, self.config
        )


def rarely_seen(counts: np.ndarray) -> np.ndarray:
    """Items seen in training, but at most RARE_TARGET_MAX times."""
    rare: np.ndarray = (counts >= 1) & (counts <= RARE_TARGET_MAX)
    return rare


def predict_unseen_bias(
    vectors: np.ndarray, bias: np.ndarray, seen: np.ndarray, items: np.ndarray, ridge: float = 1.0
) -> np.ndarray:
    """Ridge regression from text vector to learned bias over the domain's seen items."""
    known = items[seen[items]]
    unknown = items[~seen[items]]
    out = bias.copy()
    if len(unknown) == 0 or len(known) < 10:
        return out
    x = np.hstack([vectors[known], np.ones((len(known), 1), np.float32)]).astype(np.float64)
    gram = x.T @ x + ridge * np.eye(x.shape[1])
    coef = np.linalg.solve(gram, x.T @ bias[known].astype(np.float64))
    xu = np.hstack([vectors[unknown], np.ones((len(unknown), 1), np.float32)])
    out[unknown] = (xu @ coef).astype(bias.dtype)
    return out


def aligned(
    adapter: TrainedAdapter, item_index: dict[str, int], vectors: np.ndarray
) -> TrainedAdapter:
    """The adapter re-indexed to the current catalogue order; new items count as unseen.

    Everything else (weights, epochs, validation figures, dropped domains) is kept as is.
    """
    n = len(vectors)
    order = sorted(item_index, key=item_index.__getitem__)
    if adapter.item_ids == order and len(adapter.seen) == n:
        return adapter
    old = np.array([item_index.get(i, -1) for i in adapter.item_ids], dtype=np.int64)
    keep = old >= 0
    seen = np.zeros(n, dtype=bool)
    seen[old[keep]] = adapter.seen[keep]
    counts = None
    if adapter.counts is not None:
        counts = np.zeros(n, dtype=np.int64)
        counts[old[keep]] = adapter.counts[keep]

    def moved(rows: np.ndarray) -> np.ndarray:
        out = np.zeros((n, *rows.shape[1:]), np.float32 if rows.dtype == np.float64 else rows.dtype)
        out[old[keep]] = rows[keep]
        return out

    domains = {
        d: replace(
            a,
            offsets=moved(a.offsets),
            bias=predict_unseen_bias(vectors, moved(a.bias), seen, np.arange(n)),
            inputs=None if a.inputs is None else moved(a.inputs),
        )
        for d, a in adapter.domains.items()
    }
    return replace(adapter, domains=domains, item_ids=order, seen=seen, counts=counts)
