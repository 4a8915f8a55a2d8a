"""A small model learned on the device on top of frozen text vectors, and its CF hybrid.

Per target domain T:

    u      = W_src · m_src + W_same · m_same + Σ_j w_j e_j    (d)
    q_i    = P · x_i + o_i                                   (d)
    s(u,i) = u · q_i + b_i

x_i is item i's frozen text vector; m_src and m_same are recency-weighted means of the
history's text vectors from other domains and from T, and Σ_j w_j e_j the same recency
weights over learned per-item input vectors e_j (collaborative: "people who had j"; zero
for items never seen in training, so a history of new items falls back to text alone).
o_i is a learned per-item offset, b_i a bias that starts at log(1 + popularity).
Training is a softmax over each target and a shared draw of uniform negatives from T, on
every prefix -> next pair of the training sequences, with Adam; the epoch is chosen on the
validation split. Items never seen in training get their bias predicted from their text
vector and no offset, so the learned bias does not bury them. Plain numpy and
scipy.sparse: no PyTorch.

The hybrid adds the standardised adapter score and the standardised collaborative score,
the weight chosen per domain and setting on the validation split; candidates seen only 1 to
RARE_TARGET_MAX times in training may get a weight of their own (`_best_rare_weight`). The
collaborative score is item-kNN, plus its two-step walk (`ItemKNNScorer.two_hop`) where
the validation split asks for it (`cf_scores`): chosen first, on collaborative filtering
alone, so the learned model's weight is the only choice made with it. A cold user (no
history item seen in training) gets nothing from CF or the learned input vectors; their
hybrid blends the adapter with zero-shot text instead, at a weight chosen on the
validation users made cold (`_best_cold_weight`).
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from .baselines import ItemKNNScorer
from .dataset import SequenceDataset
from .errors import TrainingError
from .protocol import (
    RARE_TARGET_MAX,
    Cases,
    Setting,
    draw_candidates,
    make_cases,
    metrics_from_ranks,
    ndcg_per_case,
    rank_of_target,
    tie_break,
    training_counts,
)

__all__ = [
    "AdapterConfig",
    "DomainAdapter",
    "TrainedAdapter",
    "build_pairs",
    "train_adapter",
]

ItemArray = npt.NDArray[np.integer[Any]]
ADAPTER_NAME = "adapter"
# Plain strings: the keys of stored weights and validation figures.
SETTINGS: tuple[str, ...] = ("mixed", "cross")
HYBRID_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 1e6)
TWO_HOP_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


@dataclass(frozen=True)
class AdapterConfig:
    """Hyper-parameters; the defaults were chosen on the Food-Kitchen validation split."""

    dim: int = 64
    epochs: int = 10
    batch_size: int = 512
    negatives: int = 2000
    learning_rate: float = 0.005
    offset_decay: float = 1e-4
    half_life: float = 5.0
    max_prefix: int = 50
    # An epoch is a random sample of at most this many pairs: big domains (kitchen has
    # ~280k) then cost no more per epoch than small ones, and more epochs see more of them.
    max_pairs_per_epoch: int = 150_000
    # Share of training pairs whose same-domain history is hidden, so that the
    # other-domain projection learns to carry a user who is new to the domain.
    same_dropout: float = 0.5
    # Stop after this many epochs without a better validation score.
    patience: int = 2
    # Start item biases at log(1 + popularity) (True) or at zero.
    popularity_bias: bool = True
    # Learn an input vector per history item (True) or use the text means alone.
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
    # Per setting, the weight of item-kNN's two-step walk in the collaborative score
    # (missing: 0, item-kNN alone, as adapters stored before it had).
    two_hop_weight: dict[str, float] = field(default_factory=dict)
    # Per setting, the weight of zero-shot text in a cold user's hybrid (missing: 0, the
    # adapter alone, as adapters stored before it had).
    cold_weight: dict[str, float] = field(default_factory=dict)

    def item_reps(self, vectors: np.ndarray, items: np.ndarray) -> np.ndarray:
        reps: np.ndarray = vectors[items] @ self.proj.T + self.offsets[items]
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
        histories: Sequence[ItemArray],
        candidates: np.ndarray,
        vectors: np.ndarray,
        item_domains: np.ndarray,
        config: AdapterConfig,
    ) -> np.ndarray:
        """s(u, i) for each history's row of candidates."""
        src, same = _history_weights(
            histories,
            item_domains,
            self.domain,
            len(vectors),
            config.half_life,
            config.max_prefix,
        )
        users = self.users_from_weights(src, same, vectors)
        unique, inverse = np.unique(candidates, return_inverse=True)
        reps = self.item_reps(vectors, unique)
        gathered = reps[inverse.reshape(candidates.shape)]
        out: np.ndarray = np.einsum("bd,bcd->bc", users, gathered) + self.bias[candidates]
        return out

    def users_from_weights(
        self, src: sp.csr_matrix, same: sp.csr_matrix, vectors: np.ndarray
    ) -> np.ndarray:
        """User vectors from (histories x items) recency weights of the two history parts."""
        m_src = np.asarray(src @ vectors, np.float32)
        m_same = np.asarray(same @ vectors, np.float32)
        id_part = None
        if self.inputs is not None:
            id_part = np.asarray((src + same) @ self.inputs, np.float32)
        return self.user_reps(m_src, m_same, id_part)


def _history_weights(
    histories: Sequence[ItemArray],
    domains: np.ndarray,
    target_domain: int,
    n_items: int,
    half_life: float,
    max_prefix: int,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Two row-normalised (histories x items) matrices: other-domain and same-domain items."""
    rows_l, cols_l, ages_l = [], [], []
    for r, h in enumerate(histories):
        h = np.asarray(h[-max_prefix:], dtype=np.int64)
        if len(h):
            rows_l.append(np.full(len(h), r))
            cols_l.append(h)
            ages_l.append(np.arange(len(h) - 1, -1, -1))
    shape = (len(histories), n_items)
    if not rows_l:
        return sp.csr_matrix(shape, dtype=np.float32), sp.csr_matrix(shape, dtype=np.float32)
    rows, cols, ages = np.concatenate(rows_l), np.concatenate(cols_l), np.concatenate(ages_l)
    weights = np.power(0.5, ages / half_life)
    same = domains[cols] == target_domain
    return _normalised(rows, cols, weights, ~same, shape), _normalised(
        rows, cols, weights, same, shape
    )


def _normalised(
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
class Pairs:
    """Every prefix -> next training pair whose next item is in the target domain."""

    src: sp.csr_matrix
    same: sp.csr_matrix
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


def build_pairs(
    sequences: Sequence[ItemArray],
    domains: np.ndarray,
    target_domain: int,
    n_items: int,
    half_life: float,
    max_prefix: int,
) -> Pairs:
    """The history weights of all prefixes, built in one vectorised pass per sequence."""
    rows_l, cols_l, ages_l, targets_l = [], [], [], []
    n = 0
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64)
        positions = np.flatnonzero(domains[seq[1:]] == target_domain) + 1
        if not len(positions):
            continue
        for t in positions.tolist():
            start = max(0, t - max_prefix)
            rows_l.append(np.full(t - start, n))
            cols_l.append(seq[start:t])
            ages_l.append(np.arange(t - start - 1, -1, -1))
            n += 1
        targets_l.append(seq[positions])
    if n == 0:
        empty = sp.csr_matrix((0, n_items), dtype=np.float32)
        return Pairs(empty, empty, np.zeros(0, dtype=np.int64))
    rows, cols, ages = np.concatenate(rows_l), np.concatenate(cols_l), np.concatenate(ages_l)
    weights = np.power(0.5, ages / half_life)
    same = domains[cols] == target_domain
    shape = (n, n_items)
    return Pairs(
        _normalised(rows, cols, weights, ~same, shape),
        _normalised(rows, cols, weights, same, shape),
        np.concatenate(targets_l),
    )


class _Adam:
    """Adam over named arrays; rows of sparse parameters update lazily (only those touched)."""

    def __init__(self, params: dict[str, np.ndarray], lr: float) -> None:
        self.lr = lr
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, Any]) -> None:
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        correction = math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for name, grad in grads.items():
            if isinstance(grad, tuple):  # (rows, row gradients) of a sparse parameter
                rows, g = grad
                m, v = self.m[name][rows], self.v[name][rows]
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * g * g
                self.m[name][rows], self.v[name][rows] = m, v
                params[name][rows] -= self.lr * correction * m / (np.sqrt(v) + eps)
            else:
                self.m[name] = b1 * self.m[name] + (1 - b1) * grad
                self.v[name] = b2 * self.v[name] + (1 - b2) * grad * grad
                params[name] -= self.lr * correction * self.m[name] / (np.sqrt(self.v[name]) + eps)


def batch_loss_and_grads(
    params: dict[str, np.ndarray],
    m_src: np.ndarray,
    m_same: np.ndarray,
    vectors: np.ndarray,
    targets: np.ndarray,
    negatives: np.ndarray,
    offset_decay: float = 0.0,
    history: sp.csr_matrix | None = None,
) -> tuple[float, dict[str, Any]]:
    """Softmax cross-entropy of each target against the shared negatives, and its gradient.

    `history` is the batch's (rows x items) recency weights, used with params["inputs"].
    Sparse parameters (offsets, bias, inputs) get (unique rows, summed gradient) pairs.
    """
    w_src, w_same, proj, offsets, bias = (
        params["w_src"],
        params["w_same"],
        params["proj"],
        params["offsets"],
        params["bias"],
    )
    users = m_src @ w_src.T + m_same @ w_same.T  # (B, d)
    touched = sub_history = None
    if history is not None and "inputs" in params:
        touched = np.unique(history.indices)
        sub_history = history[:, touched]
        users = users + sub_history @ params["inputs"][touched]
    x_t, x_n = vectors[targets], vectors[negatives]
    q_t = x_t @ proj.T + offsets[targets]
    q_n = x_n @ proj.T + offsets[negatives]
    s_pos = (users * q_t).sum(axis=1) + bias[targets]
    s_neg = users @ q_n.T + bias[negatives]
    # A negative that is the row's own target is not a negative.
    s_neg = np.where(negatives[None, :] == targets[:, None], -np.inf, s_neg)
    logits = np.concatenate([s_pos[:, None], s_neg], axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    probs = exp / exp.sum(axis=1, keepdims=True)
    batch = len(targets)
    loss = float(-np.log(np.maximum(probs[:, 0], 1e-30)).mean())
    grad = probs / batch
    grad[:, 0] -= 1.0 / batch
    g_pos, g_neg = grad[:, 0], grad[:, 1:]
    d_users = g_pos[:, None] * q_t + g_neg @ q_n
    d_qt = g_pos[:, None] * users
    d_qn = g_neg.T @ users
    items = np.concatenate([targets, negatives])
    d_q = np.concatenate([d_qt, d_qn])
    d_b = np.concatenate([g_pos, g_neg.sum(axis=0)])
    unique, inverse = np.unique(items, return_inverse=True)
    # Summing rows that share an item, as one sparse product: np.add.at is ~10x slower.
    scatter = sp.csr_matrix(
        (np.ones(len(items), np.float32), (inverse, np.arange(len(items)))),
        shape=(len(unique), len(items)),
    )
    d_offsets = np.asarray(scatter @ d_q) + offset_decay * offsets[unique]
    d_bias = np.asarray(scatter @ d_b).ravel()
    grads: dict[str, Any] = {
        "w_src": d_users.T @ m_src,
        "w_same": d_users.T @ m_same,
        "proj": d_q.T @ vectors[items],
        "offsets": (unique, d_offsets.astype(offsets.dtype)),
        "bias": (unique, d_bias.astype(bias.dtype)),
    }
    if touched is not None and sub_history is not None:
        inputs = params["inputs"]
        d_inputs = np.asarray(sub_history.T @ d_users) + offset_decay * inputs[touched]
        grads["inputs"] = (touched, d_inputs.astype(inputs.dtype))
    return loss, grads


@dataclass
class TrainedAdapter:
    """One `DomainAdapter` per target domain, and what is needed to use and store them."""

    model: str
    config: AdapterConfig
    domains: dict[int, DomainAdapter]
    domain_names: tuple[str, ...]
    item_ids: list[str]
    seen: np.ndarray
    train_pairs: int
    seconds: float
    # Domains without an adapter, and why: zero-shot serves them.
    dropped: dict[str, str] = field(default_factory=dict)
    # How often each item occurs in the training data (None: stored by an earlier version).
    counts: np.ndarray | None = None

    def cold(self, history: np.ndarray) -> bool:
        """Whether no item of `history` was seen in training: CF and the learned input
        vectors know nothing of this user."""
        return not bool(self.seen[np.asarray(history, dtype=np.int64)].any())

    def rare(self, items: np.ndarray) -> np.ndarray:
        """Which of `items` were seen in training, but rarely (see `rarely_seen`)."""
        if self.counts is None:
            return np.zeros(np.shape(items), dtype=bool)
        return rarely_seen(self.counts[items])

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {"seen": self.seen}
        if self.counts is not None:
            arrays["counts"] = self.counts.astype(np.uint32)
        for d, a in self.domains.items():
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

    def meta(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "config": self.config.__dict__,
            "domain_names": list(self.domain_names),
            "item_ids": self.item_ids,
            "train_pairs": self.train_pairs,
            "seconds": round(self.seconds, 1),
            "domains": {
                str(d): {
                    "epoch": a.epoch,
                    "valid_ndcg@10": a.valid_ndcg,
                    "hybrid_weight": a.hybrid_weight,
                    "rare_weight": a.rare_weight,
                    "two_hop_weight": a.two_hop_weight,
                    "cold_weight": a.cold_weight,
                    "hybrid_valid_ndcg@10": a.hybrid_ndcg,
                    "zero_shot_valid_ndcg@10": a.zero_shot_ndcg,
                    "seconds": round(a.seconds, 1),
                }
                for d, a in self.domains.items()
            },
            "dropped": self.dropped,
        }

    @classmethod
    def from_stored(cls, meta: dict[str, Any], payload: bytes) -> TrainedAdapter:
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
                two_hop_weight=info.get("two_hop_weight", {}),
                cold_weight=info.get("cold_weight", {}),
            )
        return cls(
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
        )

    def scores(
        self,
        histories: Sequence[ItemArray],
        candidates: np.ndarray,
        domain: int,
        vectors: np.ndarray,
        item_domains: np.ndarray,
    ) -> np.ndarray:
        return self.domains[domain].scores(
            histories, candidates, vectors, item_domains, self.config
        )


def _put_rows(arrays: dict[str, np.ndarray], name: str, matrix: np.ndarray) -> None:
    """The non-zero rows of `matrix` as float16, and their indices."""
    rows = np.flatnonzero(np.any(matrix != 0, axis=1)).astype(np.int32)
    arrays[name] = matrix[rows].astype(np.float16)
    arrays[f"{name}_rows"] = rows


def _get_rows(arrays: Any, name: str, n_items: int) -> np.ndarray:
    values = np.asarray(arrays[name], dtype=np.float32)
    if f"{name}_rows" not in arrays.files:  # stored dense by an earlier version
        return values
    out = np.zeros((n_items, values.shape[1]), np.float32)
    out[arrays[f"{name}_rows"]] = values
    return out


def _predict_unseen_bias(
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


def standardise(scores: np.ndarray) -> np.ndarray:
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    out: np.ndarray = (scores - mean) / np.maximum(std, 1e-9)
    return out


def hybrid_scores(
    adapter_scores: np.ndarray,
    knn_scores: np.ndarray,
    weight: float,
    rare: np.ndarray | None = None,
    rare_weight: float | None = None,
) -> np.ndarray:
    """z(adapter) + weight * z(collaborative score); a huge weight means CF with adapter
    tie-breaks.

    Candidates flagged in `rare` (seen 1 to RARE_TARGET_MAX times in training) get `rare_weight`
    instead, when one was chosen.
    """
    if weight >= 1e5:
        return standardise(knn_scores) + 1e-3 * standardise(adapter_scores)
    knn_weight: Any = weight
    if rare is not None and rare_weight is not None:
        knn_weight = np.where(rare, rare_weight, weight)
    out: np.ndarray = standardise(adapter_scores) + knn_weight * standardise(knn_scores)
    return out


def cf_scores(
    knn: ItemKNNScorer,
    histories: Sequence[ItemArray],
    candidates: np.ndarray,
    target_domain: int,
    two_hop_weight: float,
) -> np.ndarray:
    """The collaborative score of the hybrid: z(item-kNN) + two_hop_weight * z(its two-step
    walk), or item-kNN alone at weight 0 (the walk is then not computed)."""
    one_hop = np.asarray(knn.score(histories, candidates, target_domain), np.float64)
    if two_hop_weight == 0:
        return one_hop
    two_hop = np.asarray(knn.two_hop(histories, candidates), np.float64)
    return combine_cf(one_hop, two_hop, two_hop_weight)


def combine_cf(one_hop: np.ndarray, two_hop: np.ndarray, weight: float) -> np.ndarray:
    if weight == 0:
        return one_hop
    out: np.ndarray = standardise(one_hop) + weight * standardise(two_hop)
    return out


def train_adapter(
    dataset: SequenceDataset,
    vectors: np.ndarray,
    model: str,
    item_ids: Sequence[str],
    config: AdapterConfig | None = None,
    on_epoch: Callable[[str, int, float, dict[str, float]], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    only_domains: Sequence[int] | None = None,
) -> TrainedAdapter:
    """Train one adapter per target domain on `dataset.train`, choose epochs on `valid`."""
    config = config or AdapterConfig()
    start = time.perf_counter()
    n_items, dim = vectors.shape
    counts = training_counts(dataset)
    seen = counts > 0
    if not dataset.valid:
        raise TrainingError(f"{dataset.root}: tuning needs a validation split to choose the epoch")
    knn = ItemKNNScorer(dataset.train, n_items)
    trained: dict[int, DomainAdapter] = {}
    dropped: dict[str, str] = {}
    total_pairs = 0
    rng = np.random.default_rng(config.seed)
    valid = _Validation.build(dataset, vectors, config)
    for d in range(dataset.n_domains):
        if only_domains is not None and d not in only_domains:
            continue
        domain_start = time.perf_counter()
        pairs = build_pairs(
            dataset.train, dataset.domains, d, n_items, config.half_life, config.max_prefix
        )
        total_pairs += len(pairs)
        name = dataset.domain_names[d]
        if len(pairs) < config.min_pairs:
            dropped[name] = (
                f"only {len(pairs)} training interactions end in {name!r}; an adapter needs at "
                f"least {config.min_pairs}, or it would make results worse"
            )
            continue
        domain_items = dataset.items_of_domain(d)
        init = rng.standard_normal((config.dim, dim)) / math.sqrt(dim)
        params: dict[str, np.ndarray] = {
            "w_src": init.copy().astype(np.float32),
            "w_same": init.copy().astype(np.float32),
            "proj": init.copy().astype(np.float32),
            "offsets": np.zeros((n_items, config.dim), np.float32),
            "bias": (np.log1p(counts) if config.popularity_bias else np.zeros(n_items)).astype(
                np.float32
            ),
        }
        if config.id_inputs:
            params["inputs"] = np.zeros((n_items, config.dim), np.float32)
        optimiser = _Adam(params, config.learning_rate)
        best: tuple[float, int, dict[str, np.ndarray], dict[str, float]] | None = None
        per_epoch = min(len(pairs), config.max_pairs_per_epoch)
        steps = math.ceil(per_epoch / config.batch_size)
        for epoch in range(1, config.epochs + 1):
            order = rng.permutation(len(pairs))[:per_epoch]
            for step in range(steps):
                rows = order[step * config.batch_size : (step + 1) * config.batch_size]
                src, same = pairs.src[rows], pairs.same[rows]
                if config.same_dropout > 0:
                    hide = rng.random(len(rows)) < config.same_dropout
                    same = sp.csr_matrix(sp.diags((~hide).astype(np.float32)) @ same)
                m_src = np.asarray(src @ vectors, np.float32)
                m_same = np.asarray(same @ vectors, np.float32)
                negatives = domain_items[rng.integers(0, len(domain_items), config.negatives)]
                _, grads = batch_loss_and_grads(
                    params,
                    m_src,
                    m_same,
                    vectors,
                    pairs.targets[rows],
                    negatives,
                    config.offset_decay,
                    sp.csr_matrix(src + same) if config.id_inputs else None,
                )
                optimiser.step(params, grads)
                if on_batch is not None:
                    on_batch(step + 1, steps)
            snapshot = _domain_adapter(d, params, vectors, seen, domain_items)
            ndcg = {s: valid.tuned_ndcg(snapshot, s) for s in SETTINGS}
            mean = float(np.mean(list(ndcg.values())))
            if on_epoch is not None:
                on_epoch(dataset.domain_names[d], epoch, mean, ndcg)
            if best is None or mean > best[0]:
                best = (mean, epoch, {k: v.copy() for k, v in params.items()}, ndcg)
            elif epoch - best[1] >= config.patience:
                break
        assert best is not None
        adapter = _domain_adapter(d, best[2], vectors, seen, domain_items)
        adapter.epoch, adapter.valid_ndcg = best[1], best[3]
        blends: dict[str, _Blend] = {}
        zero_shot_cases: dict[str, np.ndarray] = {}
        for s in SETTINGS:
            blend = valid.blend(adapter, knn, s, counts)
            zero_shot = valid.zero_shot_scores(s, d)
            if blend is None or zero_shot is None:
                adapter.hybrid_weight[s] = 1.0  # no validation case to choose by
                continue
            blends[s] = blend
            zero_shot_cases[s] = valid.case_ndcg(zero_shot, blend.cands)
            adapter.two_hop_weight[s] = blend.choose_two_hop(valid)
            adapter.hybrid_weight[s], adapter.hybrid_ndcg[s] = _best_hybrid_weight(blend, valid)
            adapter.zero_shot_ndcg[s] = float(zero_shot_cases[s].mean())
            adapter.cold_weight[s] = _best_cold_weight(adapter, s, zero_shot, valid)
        adapter.rare_weight = _best_rare_weight(blends, adapter.hybrid_weight, valid)
        adapter.seconds = time.perf_counter() - domain_start
        if not blends:
            dropped[name] = f"no validation case ends in {name!r}, so nothing shows it would help"
            continue
        hybrid_cases = {
            s: valid.case_ndcg(_hybrid_of(adapter, blend, s), blend.cands)
            for s, blend in blends.items()
        }
        for s, cases in hybrid_cases.items():  # now with the rare weight too
            adapter.hybrid_ndcg[s] = float(cases.mean())
        gains = np.concatenate([hybrid_cases[s] - zero_shot_cases[s] for s in blends])
        why_not = _not_better(gains, adapter)
        if why_not:
            dropped[name] = why_not
            continue
        trained[d] = adapter
    if not trained:
        raise TrainingError(
            "no adapter was kept: "
            + "; ".join(f"{name}: {why}" for name, why in dropped.items())
            + ". Keep using the zero-shot recommendations until there is more history."
        )
    return TrainedAdapter(
        model,
        config,
        trained,
        dataset.domain_names,
        list(item_ids),
        seen,
        total_pairs,
        time.perf_counter() - start,
        dropped,
        counts,
    )


def _domain_adapter(
    d: int,
    params: dict[str, np.ndarray],
    vectors: np.ndarray,
    seen: np.ndarray,
    domain_items: np.ndarray,
) -> DomainAdapter:
    offsets = params["offsets"].copy()
    offsets[~seen] = 0.0
    inputs = None
    if "inputs" in params:
        inputs = params["inputs"].copy()
        inputs[~seen] = 0.0
    bias = _predict_unseen_bias(vectors, params["bias"], seen, domain_items)
    return DomainAdapter(
        d,
        params["w_src"].copy(),
        params["w_same"].copy(),
        params["proj"].copy(),
        offsets,
        bias,
        inputs,
    )


@dataclass
class _Blend:
    """One setting's validation cases of a domain, scored by the adapter, by item-kNN and by
    its two-step walk; `cf` is the collaborative score with the chosen two-hop weight."""

    tuned: np.ndarray
    knn: np.ndarray
    two_hop: np.ndarray
    cands: np.ndarray
    rare: np.ndarray  # candidates seen 1 to RARE_TARGET_MAX times in training
    rare_target: np.ndarray  # cases whose target is such an item
    cf: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.cf = self.knn

    def choose_two_hop(self, valid: _Validation) -> float:
        """The two-step walk's weight with the best validation NDCG@10 of collaborative
        filtering alone (the first best, so 0 unless the walk helps); sets `cf`."""
        best_weight, _ = _first_best(
            TWO_HOP_WEIGHTS,
            lambda w: valid.ndcg(combine_cf(self.knn, self.two_hop, w), self.cands),
        )
        self.cf = combine_cf(self.knn, self.two_hop, best_weight)
        return best_weight


@dataclass
class _Validation:
    """The validation split as `tune` scores it: cases and the protocol's candidates per
    setting, tie-broken as `evaluate` breaks them."""

    dataset: SequenceDataset
    vectors: np.ndarray
    config: AdapterConfig
    cases: dict[str, Cases]
    cands: dict[str, np.ndarray]
    ties: np.ndarray

    @classmethod
    def build(
        cls, dataset: SequenceDataset, vectors: np.ndarray, config: AdapterConfig
    ) -> _Validation:
        cases: dict[str, Cases] = {
            s: make_cases(dataset.valid, dataset, cast(Setting, s)) for s in SETTINGS
        }
        # The evaluation protocol's draw; small catalogues get as many negatives as they have.
        n_neg = min(999, min(len(dataset.items_of_domain(d)) for d in range(dataset.n_domains)) - 1)
        cands = {s: draw_candidates(c, dataset, n_neg, 42) for s, c in cases.items()}
        return cls(dataset, vectors, config, cases, cands, tie_break(dataset.n_items))

    def rows(self, setting: str, d: int) -> np.ndarray:
        rows: np.ndarray = np.flatnonzero(self.cases[setting].domains == d)
        return rows

    def histories(self, setting: str, rows: np.ndarray) -> list[ItemArray]:
        return [self.cases[setting].histories[i] for i in rows]

    def ndcg(self, scores: np.ndarray, cands: np.ndarray, cases: np.ndarray | None = None) -> float:
        """NDCG@10 of the protocol's ranks (of the `cases` rows only, if given)."""
        ranks = rank_of_target(scores + self.ties[cands])
        return metrics_from_ranks(ranks if cases is None else ranks[cases])["ndcg@10"]

    def tuned_scores(self, adapter: DomainAdapter, setting: str, rows: np.ndarray) -> np.ndarray:
        histories, cands = self.histories(setting, rows), self.cands[setting][rows]
        scores = adapter.scores(histories, cands, self.vectors, self.dataset.domains, self.config)
        as_float64: np.ndarray = scores.astype(np.float64)
        return as_float64

    def tuned_ndcg(self, adapter: DomainAdapter, setting: str) -> float:
        rows = self.rows(setting, adapter.domain)
        if not len(rows):
            return 0.0
        scores = self.tuned_scores(adapter, setting, rows)
        return self.ndcg(scores, self.cands[setting][rows])

    def blend(
        self, adapter: DomainAdapter, knn: ItemKNNScorer, setting: str, counts: np.ndarray
    ) -> _Blend | None:
        rows = self.rows(setting, adapter.domain)
        if not len(rows):
            return None
        cands = self.cands[setting][rows]
        histories = self.histories(setting, rows)
        knn_scores = knn.score(histories, cands, adapter.domain)
        rare = rarely_seen(counts[cands])
        return _Blend(
            self.tuned_scores(adapter, setting, rows),
            np.asarray(knn_scores, np.float64),
            np.asarray(knn.two_hop(histories, cands), np.float64),
            cands,
            rare,
            rare[:, 0],
        )

    def case_ndcg(self, scores: np.ndarray, cands: np.ndarray) -> np.ndarray:
        """Each case's NDCG@10, ranks as `ndcg` gives them."""
        return ndcg_per_case(rank_of_target(scores + self.ties[cands]), 10)

    def zero_shot_scores(self, setting: str, d: int) -> np.ndarray | None:
        """Scores of the zero-shot default (the text max-sim + mean blend)."""
        from .evaluation import EmbeddingScorer

        rows = self.rows(setting, d)
        if not len(rows):
            return None
        scorer = EmbeddingScorer("zero-shot", "hybrid", self.vectors, self.dataset.domains)
        cands = self.cands[setting][rows]
        return np.asarray(scorer.score(self.histories(setting, rows), cands, d), np.float64)


def _hybrid_of(adapter: DomainAdapter, blend: _Blend, setting: str) -> np.ndarray:
    """The validation cases' hybrid scores with the weights `tune` chose."""
    weight = adapter.hybrid_weight[setting]
    return hybrid_scores(blend.tuned, blend.cf, weight, blend.rare, adapter.rare_weight)


def _best_cold_weight(
    adapter: DomainAdapter, setting: str, zero_shot: np.ndarray, valid: _Validation
) -> float:
    """The zero-shot weight of a cold user's hybrid, chosen on the validation users made
    cold: the adapter without its learned input vectors (none for unseen items), and no
    CF (a cold history has no co-occurrences). The first best, so 0 unless text helps."""
    cold = replace(adapter, inputs=None)
    rows = valid.rows(setting, adapter.domain)
    cands = valid.cands[setting][rows]
    tuned = valid.tuned_scores(cold, setting, rows)
    weight, _ = _first_best(
        HYBRID_WEIGHTS, lambda w: valid.ndcg(hybrid_scores(tuned, zero_shot, w), cands)
    )
    return weight


def _not_better(gains: np.ndarray, adapter: DomainAdapter) -> str | None:
    """Why the hybrid's per-case validation gains over zero-shot text do not justify keeping
    it, or None. The gain must be positive and at least one standard error of the paired
    per-case difference: on a few dozen cases a small lead is noise."""
    learned = float(np.mean(list(adapter.hybrid_ndcg.values())))
    zero_shot = float(np.mean(list(adapter.zero_shot_ndcg.values())))
    scored = (
        f"on the validation split the tuned hybrid scored NDCG@10 {100 * learned:.2f}% "
        f"against {100 * zero_shot:.2f}% for zero-shot text"
    )
    if learned <= zero_shot or gains.mean() <= 0:
        return f"{scored}; it would make results worse"
    error = float(gains.std(ddof=1) / math.sqrt(len(gains))) if len(gains) > 1 else math.inf
    if gains.mean() < error:
        return (
            f"{scored}, a lead within noise on {len(gains)} validation cases (one standard "
            f"error: {100 * error:.2f} points); more history is needed to show it helps"
        )
    return None


def rarely_seen(counts: np.ndarray) -> np.ndarray:
    """Items seen in training, but at most RARE_TARGET_MAX times."""
    rare: np.ndarray = (counts >= 1) & (counts <= RARE_TARGET_MAX)
    return rare


def _best_hybrid_weight(blend: _Blend, valid: _Validation) -> tuple[float, float]:
    """The collaborative weight with the best validation NDCG@10, and that NDCG."""
    return _first_best(
        HYBRID_WEIGHTS, lambda w: valid.ndcg(hybrid_scores(blend.tuned, blend.cf, w), blend.cands)
    )


def _first_best(weights: Sequence[float], ndcg_of: Callable[[float], float]) -> tuple[float, float]:
    """The weight with the highest `ndcg_of(weight)`, the earliest of equals, and that value."""
    best_weight, best_ndcg = weights[0], -math.inf
    for weight in weights:
        ndcg = ndcg_of(weight)
        if ndcg > best_ndcg:
            best_weight, best_ndcg = weight, ndcg
    return best_weight, best_ndcg


def _best_rare_weight(
    blends: dict[str, _Blend], weights: dict[str, float], valid: _Validation
) -> float | None:
    """The collaborative weight for rarely seen candidates, or None to keep the setting's.

    The learned model knows little about an item seen once or twice, and its bias (which
    starts at log(1 + popularity)) ranks it low, while one co-occurrence is strong
    evidence for item-kNN. So the rule is a constraint: on the validation targets that are
    rarely seen (pooled over the settings: each alone is a few dozen cases), the hybrid
    must score at least item-kNN's NDCG@10; among the weights that do, the best NDCG@10 on
    all validation targets wins. If none does, or there is no such target, none is set.
    """
    if not any(blend.rare_target.any() for blend in blends.values()):
        return None
    rare_cases = np.concatenate([blend.rare_target for blend in blends.values()])

    def case_gains(score: Callable[[str, _Blend], np.ndarray]) -> np.ndarray:
        """Per-case NDCG@10 of every validation case, the settings one after another."""
        return np.concatenate([valid.case_ndcg(score(s, b), b.cands) for s, b in blends.items()])

    knn_rare = case_gains(lambda s, b: b.knn)[rare_cases].mean()
    best: tuple[float, float | None] | None = None
    for rare_weight in (None, *HYBRID_WEIGHTS[:-1]):

        def hybrid(setting: str, b: _Blend, w: float | None = rare_weight) -> np.ndarray:
            return hybrid_scores(b.tuned, b.cf, weights[setting], b.rare, w)

        gains = case_gains(hybrid)
        if gains[rare_cases].mean() < knn_rare:
            continue
        overall = float(gains.mean())
        if best is None or overall > best[0]:
            best = (overall, rare_weight)
    return None if best is None else best[1]


def store_adapter(store: Any, adapter: TrainedAdapter) -> None:
    store.put_adapter(adapter.model, ADAPTER_NAME, adapter.meta(), adapter.to_bytes())


def load_adapter(store: Any, model: str) -> TrainedAdapter | None:
    found = store.get_adapter(model, ADAPTER_NAME)
    return TrainedAdapter.from_stored(*found) if found else None


def describe(adapter: TrainedAdapter) -> str:
    return json.dumps(adapter.meta()["domains"], indent=2)


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
        out = np.zeros((n, *rows.shape[1:]), np.float32)
        out[old[keep]] = rows[keep]
        return out

    domains = {
        d: replace(
            a,
            offsets=moved(a.offsets),
            bias=_predict_unseen_bias(vectors, moved(a.bias), seen, np.arange(n)),
            inputs=None if a.inputs is None else moved(a.inputs),
        )
        for d, a in adapter.domains.items()
    }
    return replace(adapter, domains=domains, item_ids=order, seen=seen, counts=counts)


@dataclass
class AdapterScorer:
    """The tuned model alone, as a protocol scorer; `fallback` scores a domain without one
    (as `recommend` does, with zero-shot text)."""

    name: str
    adapter: TrainedAdapter
    vectors: np.ndarray
    domains: np.ndarray
    fallback: Any = None

    def score(
        self, histories: Sequence[ItemArray], candidates: np.ndarray, target_domain: int
    ) -> Any:
        if target_domain not in self.adapter.domains and self.fallback is not None:
            return self.fallback.score(histories, candidates, target_domain)
        return self.adapter.scores(histories, candidates, target_domain, self.vectors, self.domains)


@dataclass
class HybridScorer:
    """z(tuned) + w * z(collaborative score, `cf_scores`); w and the two-hop weight per
    domain, and per setting: whether the history has items of the target domain ("mixed")
    or not ("cross"), or the domain's rare weight for candidates seen 1 to
    RARE_TARGET_MAX times in training."""

    name: str
    tuned: AdapterScorer
    knn: ItemKNNScorer
    # Scores a cold user's zero-shot part (None: a cold user gets the adapter alone).
    zero_shot: Any = None

    def score(
        self, histories: Sequence[ItemArray], candidates: np.ndarray, target_domain: int
    ) -> Any:
        if target_domain not in self.tuned.adapter.domains:
            return self.tuned.score(histories, candidates, target_domain)
        tuned = np.asarray(self.tuned.score(histories, candidates, target_domain), np.float64)
        knn = np.asarray(self.knn.score(histories, candidates, target_domain), np.float64)
        model = self.tuned.adapter.domains[target_domain]
        two_hop = None
        if any(model.two_hop_weight.values()):
            two_hop = np.asarray(self.knn.two_hop(histories, candidates), np.float64)
        cold = [self.tuned.adapter.cold(h) for h in histories]
        zero_shot: dict[int, np.ndarray] = {}
        if self.zero_shot is not None and any(model.cold_weight.values()) and any(cold):
            at = [i for i, c in enumerate(cold) if c]
            scored = self.zero_shot.score([histories[i] for i in at], candidates[at], target_domain)
            zero_shot = dict(zip(at, np.asarray(scored, np.float64), strict=True))
        out = np.empty_like(tuned)
        for i, h in enumerate(histories):
            has_same = bool(len(h)) and bool(
                (self.tuned.domains[np.asarray(h)] == target_domain).any()
            )
            setting = "mixed" if has_same else "cross"
            if i in zero_shot:
                weight = model.cold_weight.get(setting, 0.0)
                out[i] = hybrid_scores(tuned[i : i + 1], zero_shot[i][None, :], weight)[0]
                continue
            cf = knn[i : i + 1]
            if two_hop is not None:
                cf = combine_cf(cf, two_hop[i : i + 1], model.two_hop_weight.get(setting, 0.0))
            w = model.hybrid_weight[setting]
            rare = self.tuned.adapter.rare(candidates[i : i + 1])
            out[i] = hybrid_scores(tuned[i : i + 1], cf, w, rare, model.rare_weight)[0]
        return out


def scorers_for(
    store: Any,
    model: str,
    vectors: np.ndarray,
    dataset: SequenceDataset,
    item_index: dict[str, int],
    suffix: str = "",
    fallback: Any = None,
    knn: ItemKNNScorer | None = None,
) -> list[Any]:
    """`localrec:tuned` and `localrec:hybrid` rows for eval, when an adapter is stored.

    A domain the adapter was not kept for is scored by `fallback`, as `recommend` would.
    """
    adapter = load_adapter(store, model)
    if adapter is None:
        return []
    adapter = aligned(adapter, item_index, vectors)
    tuned = AdapterScorer(f"localrec:tuned{suffix}", adapter, vectors, dataset.domains, fallback)
    knn = knn or ItemKNNScorer(dataset.train, dataset.n_items)
    return [tuned, HybridScorer(f"localrec:hybrid{suffix}", tuned, knn, fallback)]
