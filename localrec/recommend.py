"""The Python API of recommendations: `Recommender` and the small dataclasses it returns.

No click here: a desktop app imports this and gets plain data back. Several Recommenders
may read one database at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .db import ItemMatrix, Store
from .encode import item_text, templates
from .encoder import LlamaEncoder, open_encoder
from .errors import InputError
from .profiles import (
    MEAN_HALF_LIFE,
    NEEDS_TEXT,
    USER_VECTORS,
    HistoryItem,
    UserProfile,
    history_weights,
    profile_scores,
)
from .registry import ModelSpec, load_registry
from .scoring import cosine_scores, select, validate_k_threshold
from .text import HistoryEvent, parse_history, user_history_text

__all__ = ["Explanation", "Recommendation", "RecommendationList", "Recommender"]


# Why a history item explains a recommendation: its text is similar, or other users went
# on from it to the recommended item (directly, or in the walk's two steps).
SIMILAR_TEXT = "similar text"
OTHERS_NEXT = "others went on to it"
OTHERS_TWO_STEPS = "others went on to it in two steps"
# Co-occurrence reasons below this share of the CF score are not shown (but the largest).
MIN_REASON_SHARE = 0.05


@dataclass(frozen=True)
class Explanation:
    """A history item that pulled a recommendation up. `similarity` is the text cosine, or,
    for the co-occurrence reasons, the item's share of the recommendation's CF score."""

    item_id: str | None
    title: str
    action: str
    similarity: float
    reason: str = SIMILAR_TEXT


@dataclass(frozen=True)
class Recommendation:
    """One recommended (or scored) item."""

    item_id: str
    domain: str
    title: str
    score: float
    because: tuple[Explanation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "domain": self.domain,
            "title": self.title,
            "score": round(float(self.score), 6),
            "because": [e.item_id if e.item_id is not None else e.title for e in self.because],
            "because_detail": [
                {
                    "item_id": e.item_id,
                    "title": e.title,
                    "action": e.action,
                    "similarity": round(e.similarity, 6),
                    "reason": e.reason,
                }
                for e in self.because
            ],
        }


@dataclass(frozen=True)
class RecommendationList:
    """A user's list for one domain; `fallback` says when it is not personal."""

    user: str | None
    domain: str
    user_vector: str
    items: list[Recommendation]
    fallback: str | None = None
    history_size: int = 0
    notes: list[str] = field(default_factory=list)

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


Ad_hoc = Sequence[tuple[str, str]] | Sequence[str] | str


def _check_user_vector(method: str) -> None:
    if method not in (*USER_VECTORS, "tuned"):
        raise InputError(
            f"unknown user vector {method!r}; choose one of {', '.join(USER_VECTORS)}, tuned"
        )


def _item_id(value: Any) -> str:
    """An item id as stored: add_items stores integer ids as their decimal text."""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    raise InputError(f"an item id is a string (or an integer), got {value!r:.60}")


def _domain_list(from_domains: Sequence[str] | str | None) -> list[str] | None:
    """--from's domains; one name alone is one domain, not its characters."""
    if from_domains is None:
        return None
    names = [from_domains] if isinstance(from_domains, str) else list(from_domains)
    for name in names:
        if not isinstance(name, str):
            raise InputError(f"from_domains must hold domain names, got {name!r}")
    return names


class Recommender:
    """Scores a local catalogue for a user, a described user, or an item.

    `model` names the embedding model whose vectors are used (the default model when
    None). The model itself is loaded only when text must be embedded.
    """

    def __init__(
        self,
        db_path: Path | str,
        model: str | None = None,
        *,
        encoder: Any = None,
        user_vector: str = "hybrid",
        half_life: float = 10.0,
        mean_half_life: float = MEAN_HALF_LIFE,
        lang: str = "en",
        verbose: bool = False,
        adapter: bool = True,
    ) -> None:
        _check_user_vector(user_vector)
        for name, value in (("half_life", half_life), ("mean_half_life", mean_half_life)):
            if not isinstance(value, int | float) or not 0 < value < math.inf:
                raise InputError(f"{name} must be a positive number of events, got {value!r}")
        if not isinstance(db_path, str | Path):
            raise InputError(f"db_path must be a path, got {db_path!r}")
        if encoder is not None and not isinstance(getattr(encoder, "spec", None), ModelSpec):
            raise InputError(
                "the encoder needs a `spec` (a localrec ModelSpec: the model's name, dim and "
                "prefixes) so that the vectors it makes can be stored and matched"
            )
        self.store = Store(db_path, create=False)
        self.spec: ModelSpec = load_registry().get(model) if encoder is None else encoder.spec
        self.model = self.spec.name
        self.user_vector = user_vector
        self.half_life = half_life
        self.mean_half_life = mean_half_life
        self.lang = lang
        self._encoder = encoder
        self._owns_encoder = False
        self._verbose = verbose
        self._lock = threading.Lock()
        self.use_adapter = adapter
        self._tuned_state: _Tuned | bool | None = None

    def close(self) -> None:
        # An encoder the caller passed in is theirs to close; only the one opened here goes.
        if self._owns_encoder and isinstance(self._encoder, LlamaEncoder):
            self._encoder.close()
        self.store.close()

    def __enter__(self) -> Recommender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pieces ----------------------------------------------------------------------------

    @property
    def encoder(self) -> Any:
        with self._lock:
            if self._encoder is None:
                self._encoder = open_encoder(self.model, verbose=self._verbose)
                self._owns_encoder = True
            return self._encoder

    def _matrix(self, domain: str | None) -> ItemMatrix:
        if domain is not None:
            self.store.require_domain(domain)
        return self.store.item_matrix(self.model, domain, dim=self.spec.dim)

    def _stored_history(self, user: str, from_domains: Sequence[str] | None) -> list[HistoryItem]:
        events = self.store.user_events(user, from_domains)
        rows = self.store.get_items(sorted({e.item_id for e, _ in events}))
        by_domain = templates(self.store)
        return [
            HistoryItem(
                text=item_text(rows[e.item_id], by_domain.get(domain)),
                action=e.action,
                value=e.value,
                item_id=e.item_id,
                domain=domain,
            )
            for e, domain in events
            if e.item_id in rows
        ]

    def _owned(
        self, user: str | None, history: Ad_hoc | None, profile: UserProfile
    ) -> list[HistoryItem]:
        """Every item of the user's history, also those that --from left out of `profile`."""
        if history is not None:
            return self._ad_hoc_history(history)
        if user is None:
            return profile.items
        return [HistoryItem("", item_id=e.item_id) for e, _ in self.store.user_events(user, None)]

    def _ad_hoc_history(self, history: Ad_hoc) -> list[HistoryItem]:
        """Free text ("bought a phone; rated a laptop 5/5") or (item id or text, action) pairs."""
        if isinstance(history, str):
            events = parse_history(history)
        elif isinstance(history, bytes) or not isinstance(history, Iterable):
            raise InputError(
                f"a history is text or a list of item ids / (item or text, action) pairs, "
                f"got {history!r:.60}"
            )
        else:
            events = []
            for entry in history:
                if isinstance(entry, str):
                    text, action = entry, "purchase"
                elif (
                    isinstance(entry, tuple | list)
                    and len(entry) == 2
                    and all(isinstance(x, str) for x in entry)
                ):
                    text, action = entry
                else:
                    raise InputError(
                        f"a history entry is an item id or text, or an (item or text, action) "
                        f"pair of strings, got {entry!r:.60}"
                    )
                events.append(HistoryEvent(text=text, action=action))
        known = self.store.get_items([e.text for e in events])
        by_domain = templates(self.store)
        items = []
        for e in events:
            row = known.get(e.text)
            if row is not None:
                text = item_text(row, by_domain.get(row.domain))
                items.append(HistoryItem(text, e.action, e.value, row.id, row.domain))
            else:
                items.append(HistoryItem(e.text, e.action, e.value))
        return items

    def _history_vectors(self, items: list[HistoryItem]) -> np.ndarray:
        """Stored vectors for catalogue items; free text (and unencoded items) embedded now."""
        vectors = np.zeros((len(items), self.spec.dim), dtype=np.float32)
        missing: list[int] = []
        stored = self.store.item_vectors(self.model, [i.item_id for i in items if i.item_id])
        for i, item in enumerate(items):
            vector = stored.get(item.item_id) if item.item_id is not None else None
            if vector is not None and len(vector) == self.spec.dim:
                vectors[i] = vector
            else:
                missing.append(i)
        if missing:
            vectors[missing] = self.encoder.encode([items[i].text for i in missing])
        return vectors

    def _history_text_vector(self, user: str | None, items: list[HistoryItem]) -> np.ndarray:
        if user is None:  # ad-hoc users are never written down
            vector: np.ndarray = self.encoder.encode([self._history_text(items)], query=True)[0]
            return vector
        # Keyed on the events, not the text, so that a cache hit needs no model load.
        key = json.dumps(
            [
                self.model,
                self.spec.query_prefix,
                self.lang,
                self.half_life,
                [(i.item_id, i.text, i.action, i.value) for i in items],
            ],
            ensure_ascii=False,
        )
        digest = hashlib.sha256(key.encode()).hexdigest()
        cached = self.store.user_vector(user, self.model, digest)
        if cached is not None:
            return cached
        vector = self.encoder.encode([self._history_text(items)], query=True)[0]
        self.store.put_user_vector(user, self.model, digest, vector)
        return vector

    def _history_text(self, items: list[HistoryItem]) -> str:
        encoder = self.encoder
        events = [HistoryEvent(i.text, i.action, i.value) for i in items]
        return user_history_text(
            events,
            lang=self.lang,
            max_tokens=encoder.max_tokens,
            count_tokens=getattr(encoder, "count_tokens", None),
            half_life=self.half_life,
        )

    def profile(
        self,
        user: str | None = None,
        *,
        history: Ad_hoc | None = None,
        from_domains: Sequence[str] | None = None,
        user_vector: str | None = None,
    ) -> UserProfile:
        method = user_vector or self.user_vector
        _check_user_vector(method)
        from_domains = _domain_list(from_domains)
        if user is None and history is None:
            raise InputError("give a stored user or an ad-hoc history")
        if user is not None and history is not None:
            raise InputError("give either a stored user or an ad-hoc history, not both")
        if user is not None and not isinstance(user, str):
            raise InputError(f"a user id is a string, got {user!r}")
        if history is not None:
            items = self._ad_hoc_history(history)
            if from_domains:
                items = [i for i in items if i.domain is None or i.domain in from_domains]
        else:
            assert user is not None
            items = self._stored_history(user, from_domains)
        if not items:
            return UserProfile(
                [], np.zeros((0, self.spec.dim), np.float32), np.zeros(0, np.float32)
            )
        profile = UserProfile(
            items, self._history_vectors(items), history_weights(items, self.mean_half_life)
        )
        if method in NEEDS_TEXT:
            profile.text_vector = self._history_text_vector(user, items)
        return profile

    # -- the API ---------------------------------------------------------------------------

    def recommend(
        self,
        user: str | None = None,
        *,
        domain: str,
        history: Ad_hoc | None = None,
        k: int | None = 10,
        threshold: float | None = None,
        from_domains: Sequence[str] | None = None,
        user_vector: str | None = None,
        explain: bool = False,
        include_seen: bool = False,
        fallback: bool = True,
    ) -> RecommendationList:
        """Top-k, threshold list R(u) (k=None with a threshold), or top-k of R(u)."""
        validate_k_threshold(k, threshold)
        if k is None and threshold is None:
            k = 10
        method = user_vector or self.user_vector
        from_domains = _domain_list(from_domains)
        matrix = self._matrix(domain)
        for name in from_domains or ():
            self.store.require_domain(name)
        tuned = self._tuned() if method in ("hybrid", "tuned") else None
        if method == "tuned" and tuned is None:
            raise InputError("no tuned adapter for this model; run `localrec tune` first")
        notes: list[str] = []
        if threshold is not None and tuned is not None and tuned.knows(domain):
            if method == "tuned":
                raise InputError(
                    "a threshold compares cosines s(u,p), and the tuned adapter's scores are "
                    "not cosines; give k alone, or a zero-shot user vector"
                )
            tuned = None
            notes.append(
                "a threshold compares cosines: ranked by the zero-shot hybrid user vector, "
                "not the tuned adapter (its scores have no cosine scale)"
            )
        profile = self.profile(
            user,
            history=history,
            from_domains=from_domains,
            user_vector="item-mean" if tuned is not None else method,
        )
        if profile.empty:
            if user is not None:
                who = f"user {user!r} has no usable history"
            else:
                who = "the given history has no usable items"
            shown = f"; showing the most popular {domain} items" if fallback else ""
            notes.append(f"{who}{shown}")
            items = []
            if fallback:
                owned = [] if include_seen else self._owned(user, history, profile)
                items = self._popular(matrix, k or 10, {i.item_id for i in owned})
            kind = "popular" if fallback else None  # None: nothing shown, nothing to flag
            return RecommendationList(user, domain, method, items, kind, 0, notes)
        if tuned is not None and tuned.knows(domain):
            scores = tuned.scores(profile, matrix, domain, blend=method == "hybrid")
            method = "tuned-hybrid" if method == "hybrid" else "tuned"
        elif method == "tuned":
            why = tuned.adapter.dropped.get(domain, "it was trained without it") if tuned else ""
            raise InputError(
                f"the tuned adapter has no model for {domain!r} ({why}); "
                "use --user-vector hybrid, which falls back to zero-shot text there"
            )
        else:
            scores = profile_scores(profile, method, matrix.matrix)
        if not include_seen:
            index = matrix.index()
            owned = self._owned(user, history, profile) if from_domains else profile.items
            seen = [index[i.item_id] for i in owned if i.item_id in index]
            scores = scores.copy()
            scores[seen] = -np.inf
        rows = select(scores, k, threshold)
        reasons = None
        if explain and method == "tuned-hybrid" and tuned is not None:
            # The hybrid's CF part is what carries a user across domains: say so when it did.
            reasons = tuned.cf_reasons(profile, matrix, domain)
        recs = self._build(matrix, rows, scores, profile if explain else None, reasons)
        unencoded = self.store.unencoded_items(self.model, matrix)
        if unencoded > 0:
            notes.append(
                f"{unencoded} {domain} item(s) have no {self.model} vector yet and were left "
                "out; run `localrec encode`"
            )
        return RecommendationList(user, domain, method, recs, None, len(profile.items), notes)

    def score(
        self,
        user: str | None,
        item_ids: Sequence[str | int],
        *,
        history: Ad_hoc | None = None,
        from_domains: Sequence[str] | None = None,
        user_vector: str | None = None,
    ) -> list[Recommendation]:
        """s(u, p) for the given items, in the order given: cosines of a zero-shot user vector
        (the scale a threshold compares), also when `recommend` ranks with a tuned adapter."""
        method = user_vector or self.user_vector
        if method == "tuned":
            raise InputError(
                "scores are cosines s(u,p), and the tuned adapter's scores are not cosines; "
                "use recommend with user_vector='tuned' for its ranking"
            )
        if isinstance(item_ids, str | bytes):
            raise InputError("score() takes a list of item ids, not one id")
        ids = [_item_id(i) for i in item_ids]
        everything = self.store.item_matrix(self.model, None, dim=self.spec.dim)
        index = everything.index()
        unknown = [i for i in ids if i not in index]
        if unknown:
            raise InputError(f"unknown or unencoded item(s): {', '.join(map(repr, unknown[:5]))}")
        rows = np.array([index[i] for i in ids], dtype=np.int64)
        profile = self.profile(user, history=history, from_domains=from_domains, user_vector=method)
        if profile.empty:
            raise InputError(f"user {user!r} has no usable history to score with")
        scores = profile_scores(profile, method, everything.matrix[rows])
        sub = ItemMatrix(
            self.model,
            None,
            tuple(ids),
            tuple(everything.domains[r] for r in rows),
            everything.matrix[rows],
        )
        return self._build(sub, np.arange(len(rows)), scores, None)

    def similar(
        self, item_id: str | int, *, domain: str | None = None, k: int = 10
    ) -> list[Recommendation]:
        """Items closest to `item_id` (in `domain`, else in the item's own domain)."""
        validate_k_threshold(k, None)
        item_id = _item_id(item_id)
        source = self.store.get_items([item_id]).get(item_id)
        if source is None:
            raise InputError(f"unknown item {item_id!r}")
        matrix = self._matrix(domain or source.domain)
        vector = self._history_vectors([HistoryItem(item_text(source), item_id=item_id)])[0]
        scores = cosine_scores(matrix.matrix, vector)
        allowed = np.array([i for i, x in enumerate(matrix.ids) if x != item_id], dtype=np.int64)
        rows = select(scores, k, None, allowed)
        return self._build(matrix, rows, scores, None)

    # -- helpers ---------------------------------------------------------------------------

    def has_adapter(self) -> bool:
        """Whether `recommend`'s hybrid ranks with a tuned adapter (cheap: nothing is loaded)."""
        return self.use_adapter and self.store.has_adapter(self.model)

    def _tuned(self) -> _Tuned | None:
        """The stored adapter of this model, aligned to the catalogue, with item-kNN (and
        its walk) over the database's events; or None."""
        if not self.has_adapter():
            return None
        with self._lock:
            if self._tuned_state is None:
                from .adapter import load_adapter

                found = load_adapter(self.store, self.model)
                self._tuned_state = _Tuned.build(self.store, found, self.spec) if found else False
        return self._tuned_state if isinstance(self._tuned_state, _Tuned) else None

    def _popular(
        self, matrix: ItemMatrix, k: int, owned: set[str | None] | None = None
    ) -> list[Recommendation]:
        counts = self.store.popularity(matrix.domain)
        popularity = np.array([counts.get(i, 0) for i in matrix.ids], dtype=np.float32)
        if owned:
            popularity[[r for r, i in enumerate(matrix.ids) if i in owned]] = -np.inf
        rows = select(popularity, k, None)
        titles = self.store.get_items([matrix.ids[r] for r in rows])
        return [
            Recommendation(matrix.ids[r], matrix.domains[r], titles[matrix.ids[r]].title, 0.0)
            for r in rows
        ]

    def _build(
        self,
        matrix: ItemMatrix,
        rows: np.ndarray,
        scores: np.ndarray,
        profile: UserProfile | None,
        reasons: Callable[[int], tuple[Explanation, ...]] | None = None,
    ) -> list[Recommendation]:
        """Recommendations of these rows; with a profile, explained by `reasons` where it has
        any, else by the most similar history items."""
        ids = [matrix.ids[r] for r in rows]
        titles = self.store.get_items(ids)
        out = []
        for r, item_id in zip(rows.tolist(), ids, strict=True):
            because: tuple[Explanation, ...] = ()
            if profile is not None:
                because = reasons(r) if reasons is not None else ()
                because = because or explain(profile, matrix.matrix[r])
            row = titles.get(item_id)
            out.append(
                Recommendation(
                    item_id,
                    matrix.domains[r],
                    row.title if row else item_id,
                    float(scores[r]),
                    because,
                )
            )
        return out


class _Tuned:
    """An adapter ready for one database: aligned item arrays and item-kNN over its events."""

    def __init__(
        self, adapter: Any, everything: ItemMatrix, knn: Any, domain_index: dict[str, int]
    ):
        self.adapter = adapter
        self.everything = everything
        self.index = everything.index()
        self.knn = knn
        self.domain_index = domain_index

    @classmethod
    def build(cls, store: Store, adapter: Any, spec: ModelSpec) -> _Tuned:
        from .adapter import aligned
        from .baselines import ItemKNNScorer

        everything = store.item_matrix(spec.name, None, dim=spec.dim)
        index = everything.index()
        adapter = aligned(adapter, index, everything.matrix)
        sequences = [
            np.asarray([index[i] for i, _, _ in events if i in index], dtype=np.int64)
            for events in store.user_sequences().values()
        ]
        knn = ItemKNNScorer(sequences, len(everything.ids))
        return cls(adapter, everything, knn, {n: i for i, n in enumerate(adapter.domain_names)})

    def knows(self, domain: str) -> bool:
        return self.domain_index.get(domain) in self.adapter.domains

    def scores(
        self, profile: UserProfile, matrix: ItemMatrix, domain: str, blend: bool
    ) -> np.ndarray:
        from .adapter import cf_scores, hybrid_scores

        d = self.domain_index[domain]
        model = self.adapter.domains[d]
        config = self.adapter.config
        recent = profile.items[-config.max_prefix :]
        vectors = profile.vectors[-config.max_prefix :]
        ages = np.arange(len(recent) - 1, -1, -1)
        weights = np.power(0.5, ages / config.half_life)
        same = self._same_domain(profile, d)
        rows_in_index = np.array([self.index.get(i.item_id or "", -1) for i in recent])
        means = []
        id_part = None if model.inputs is None else np.zeros(model.inputs.shape[1], np.float32)
        for mask in (~same, same):
            w = weights * mask
            total = w.sum()
            means.append((w @ vectors) / total if total > 0 else np.zeros(vectors.shape[1]))
            if id_part is not None and total > 0:
                known = rows_in_index >= 0
                id_part += (w[known] / total) @ model.inputs[rows_in_index[known]]
        user = model.user_reps(
            means[0][None, :], means[1][None, :], None if id_part is None else id_part[None, :]
        )[0]
        rows = np.array([self.index[i] for i in matrix.ids], dtype=np.int64)
        tuned: np.ndarray = model.item_reps(self.everything.matrix, rows) @ user + model.bias[rows]
        if not blend:
            return tuned
        _, history = self._known(profile)
        setting = "mixed" if same.any() else "cross"
        cold_weight = self._cold_weight(model, setting, history)
        if cold_weight:
            # Nothing of this user was seen in training: text stands in for CF.
            zero_shot = profile_scores(profile, "hybrid", matrix.matrix)
            cold: np.ndarray = hybrid_scores(
                tuned[None, :].astype(np.float64),
                zero_shot[None, :].astype(np.float64),
                cold_weight,
            )[0]
            return cold
        cf = cf_scores(
            self.knn, [history], rows[None, :], d, model.two_hop_weight.get(setting, 0.0)
        )
        blended: np.ndarray = hybrid_scores(
            tuned[None, :].astype(np.float64),
            cf,
            model.hybrid_weight[setting],
            self.adapter.rare(rows[None, :]),
            model.rare_weight,
        )[0]
        return blended

    def _known(self, profile: UserProfile) -> tuple[list[HistoryItem], np.ndarray]:
        """The profile's items that the adapter's catalogue knows, and their row indices."""
        known = [i for i in profile.items if i.item_id is not None and i.item_id in self.index]
        rows = [self.index[i.item_id] for i in known if i.item_id is not None]
        return known, np.array(rows, dtype=np.int64)

    def _same_domain(self, profile: UserProfile, d: int) -> np.ndarray:
        """Which of the history's recent items (the adapter's last max_prefix) are of domain d."""
        recent = profile.items[-self.adapter.config.max_prefix :]
        return np.array([self.domain_index.get(i.domain or "", -1) == d for i in recent], bool)

    def _setting(self, profile: UserProfile, d: int) -> str:
        """The setting: `mixed` when the recent history has items of domain d, else `cross`."""
        return "mixed" if self._same_domain(profile, d).any() else "cross"

    def _cold_weight(self, model: Any, setting: str, history: np.ndarray) -> float:
        """The zero-shot text weight of this user's hybrid when nothing of the history was
        seen in training; 0 when CF knows the user (or no weight was chosen)."""
        weight: float = model.cold_weight.get(setting, 0.0)
        return weight if weight and self.adapter.cold(history) else 0.0

    def cf_reasons(
        self, profile: UserProfile, matrix: ItemMatrix, domain: str, top: int = 3
    ) -> Callable[[int], tuple[Explanation, ...]] | None:
        """For a row of `matrix`, the one to three history items whose co-occurrences put it
        up in the hybrid, by their share of its CF score: direct follow-ups (item-kNN)
        first, else the walk's two steps where the hybrid uses it; () where CF played no
        part. None when CF plays no part in this user's hybrid at all."""
        d = self.domain_index[domain]
        model = self.adapter.domains[d]
        setting = self._setting(profile, d)
        known, history = self._known(profile)
        if not model.hybrid_weight.get(setting, 0.0) or not len(history):
            return None
        if self._cold_weight(model, setting, history):
            return None  # a cold user's hybrid has no CF part
        walk = bool(model.two_hop_weight.get(setting, 0.0))

        def reasons(row: int) -> tuple[Explanation, ...]:
            target = self.index[matrix.ids[row]]
            parts, reason = self.knn.contributions(history, target), OTHERS_NEXT
            if parts.sum() <= 0 and walk:
                parts = self.knn.contributions(history, target, two_hop=True)
                reason = OTHERS_TWO_STEPS
            total = float(parts.sum())
            if total <= 0:
                return ()
            shares: dict[str, tuple[float, HistoryItem]] = {}
            for part, item in zip(parts.tolist(), known, strict=True):
                key = item.item_id or item.text
                before = shares.get(key, (0.0, item))[0]
                shares[key] = (before + part / total, item)
            best = sorted(shares.values(), key=lambda pair: -pair[0])[:top]
            # A sliver of the score is no reason; the largest part always is.
            return tuple(
                Explanation(item.item_id, item.text, item.action, share, reason)
                for n, (share, item) in enumerate(best)
                if share > 0 and (n == 0 or share >= MIN_REASON_SHARE)
            )

        return reasons


def explain(profile: UserProfile, item_vector: np.ndarray, top: int = 3) -> tuple[Explanation, ...]:
    """The one to three history items most similar to the item, positive similarity only."""
    similarity = profile.vectors @ item_vector
    best: dict[str, tuple[float, HistoryItem]] = {}
    for i in np.argsort(-similarity, kind="stable"):
        item = profile.items[int(i)]
        key = item.item_id or item.text
        if similarity[i] <= 0 or key in best:
            continue
        best[key] = (float(similarity[i]), item)
        if len(best) == top:
            break
    return tuple(
        Explanation(item.item_id, item.text, item.action, sim) for sim, item in best.values()
    )
