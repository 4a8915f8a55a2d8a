"""Learning the adapter (`localrec.scoring.adapter`) from a dataset's training sequences.

Per target domain: a softmax over each target and a shared draw of uniform negatives
from the domain, on every prefix -> next pair of the training sequences, with Adam; the
epoch is chosen on the validation split, then the hybrid's weights
(`localrec.tuning.selection`). Plain numpy and scipy.sparse: no PyTorch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from localrec.data.dataset import SequenceDataset
from localrec.data.protocol import training_counts
from localrec.errors import TrainingError
from localrec.scoring.adapter import (
    AdapterConfig,
    DomainAdapter,
    TrainedAdapter,
    normalised,
    predict_unseen_bias,
)
from localrec.tuning.selection import Scored, Validation, choose_weights
from localrec.weighting import ages, recency

__all__ = ["Pairs", "batch_loss_and_grads", "build_pairs", "train_adapter"]

ItemArray = npt.NDArray[np.integer[Any]]


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
            ages_l.append(ages(t - start))
            n += 1
        targets_l.append(seq[positions])
    if n == 0:
        empty = sp.csr_matrix((0, n_items), dtype=np.float32)
        return Pairs(empty, empty, np.zeros(0, dtype=np.int64))
    rows, cols, event_ages = np.concatenate(rows_l), np.concatenate(cols_l), np.concatenate(ages_l)
    weights = recency(event_ages, half_life)
    same = domains[cols] == target_domain
    shape = (n, n_items)
    return Pairs(
        normalised(rows, cols, weights, ~same, shape),
        normalised(rows, cols, weights, same, shape),
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


def train_adapter(
    dataset: SequenceDataset,
    vectors: np.ndarray,
    model: str,
    item_ids: Sequence[str],
    config: AdapterConfig | None = None,
    on_epoch: Callable[[str, int, float, dict[str, float]], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    only_domains: Sequence[int] | None = None,
    validation: Validation | None = None,
) -> TrainedAdapter:
    """Train one adapter per target domain on `dataset.train`, choose epochs and the
    hybrid's weights on `dataset.valid` (or on `validation`, built over `dataset` and
    kept, so that several seeds share its collaborative scores)."""
    config = config or AdapterConfig()
    start = time.perf_counter()
    n_items, dim = vectors.shape
    counts = training_counts(dataset)
    seen = counts > 0
    if not dataset.valid:
        raise TrainingError(f"{dataset.root}: tuning needs a validation split to choose the epoch")
    trained: dict[int, DomainAdapter] = {}
    dropped: dict[str, str] = {}
    total_pairs = 0
    rng = np.random.default_rng(config.seed)
    valid = validation or Validation.build(dataset, vectors, config)
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
        best: tuple[float, int, dict[str, np.ndarray], dict[str, float], Scored] | None = None
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
            ndcg, scored = valid.tuned_ndcg(snapshot)
            mean = float(np.mean(list(ndcg.values())))
            if on_epoch is not None:
                on_epoch(dataset.domain_names[d], epoch, mean, ndcg)
            if best is None or mean > best[0]:
                best = (mean, epoch, {k: v.copy() for k, v in params.items()}, ndcg, scored)
            elif epoch - best[1] >= config.patience:
                break
        assert best is not None
        adapter = _domain_adapter(d, best[2], vectors, seen, domain_items)
        adapter.epoch, adapter.valid_ndcg = best[1], best[3]
        # The kept epoch's snapshot was this very adapter: its scores are reused.
        why_not = choose_weights(adapter, valid, best[4])
        adapter.seconds = time.perf_counter() - domain_start
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
        dataset.sample,
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
    bias = predict_unseen_bias(vectors, params["bias"], seen, domain_items)
    return DomainAdapter(
        d,
        params["w_src"].copy(),
        params["w_same"].copy(),
        params["proj"].copy(),
        offsets,
        bias,
        inputs,
    )
