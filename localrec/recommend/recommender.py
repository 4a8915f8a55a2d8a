"""The Python API of recommendations: `Recommender` and the small dataclasses it returns.

No click here: a desktop app imports this and gets plain data back. Several Recommenders
may read one database at once.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from localrec.embedding.llama_encoder import Encoder, require_encoder
from localrec.embedding.loader import open_encoder
from localrec.errors import InputError
from localrec.models.registry import ModelSpec, load_registry
from localrec.packs.pack import Pack, open_pack, require_pack_model
from localrec.recommend.candidates import candidate_pool
from localrec.recommend.catalogue import (
    PACK_MODEL_KEY,
    Catalogue,
    DatabaseCatalogue,
    PackCatalogue,
    follow_pack,
)
from localrec.recommend.history import (
    AdHoc,
    HistoryItem,
    UserProfile,
    domain_list,
)
from localrec.recommend.history import (
    item_id as as_item_id,
)
from localrec.recommend.listing import listed, popular_items
from localrec.recommend.notes import catalogue_notes, cold_start_note
from localrec.recommend.reading import ad_hoc_history, history_text_vector, stored_history
from localrec.recommend.results import Recommendation, RecommendationList
from localrec.recommend.tuned import TunedCatalogue
from localrec.recommend.user_vectors import UserVector, check_user_vector, zero_shot_method
from localrec.scoring.profiles import MEAN_HALF_LIFE, NEEDS_TEXT
from localrec.scoring.select import cosine_scores, select, validate_k_threshold
from localrec.store.config import action_weights
from localrec.store.db import ItemMatrix, Store
from localrec.store.ingest import add_events
from localrec.store.item_vectors import item_text
from localrec.text import LANGUAGES

__all__ = ["PACK_MODEL_KEY", "Recommender", "UserVector", "zero_shot_method"]


def _check_options(
    pack: object, model: object, lang: object, adapter: object, verbose: object
) -> None:
    """A Python caller's mistakes in the Recommender's options are InputErrors too."""
    if pack is not None and not isinstance(pack, str | Path | Pack):
        raise InputError(f"pack must be a path or an open Pack, got {pack!r:.60}")
    if model is not None and not isinstance(model, str):
        raise InputError(f"model must be a model's name, got {model!r:.60}")
    if lang not in LANGUAGES:
        raise InputError(f"unknown language {lang!r:.20}; choose one of {', '.join(LANGUAGES)}")
    for name, flag in (("adapter", adapter), ("verbose", verbose)):
        if not isinstance(flag, bool):
            raise InputError(f"{name} must be True or False, got {flag!r:.40}")


class Recommender:
    """Scores a local catalogue for a user, a described user, or an item.

    Use it as a context manager (or call `close`). One Recommender may serve several
    threads. The model itself is loaded only when text must be embedded.

    Args:
        db: The database file: the catalogue, events and vectors; beside a `pack`, the
            device's private database of its own events (created if missing).
        model: The embedding model whose vectors are used (the default model when None;
            with a pack, the pack's model or None).
        pack: A pack file (`localrec pack build`) or an open `Pack` to recommend from.
        encoder: An open encoder to embed with instead of loading `model`; it stays open
            when the Recommender closes.
        user_vector: How a user becomes scores when a call does not say: "hybrid" (the
            tuned hybrid where `tune` kept an adapter, zero-shot text elsewhere),
            "zero-shot", "history-text", "item-mean", "max-sim" or "tuned".
        half_life: Recency half-life, in events, of the history written as text
            (history-text).
        mean_half_life: Recency half-life, in events, of item-mean (also inside zero-shot
            and the tuned hybrid).
        lang: Language of history texts ("en" or "zh").
        verbose: Show llama.cpp's own log on stderr.
        adapter: Use a tuned adapter where there is one; False ranks with zero-shot text.
    """

    def __init__(
        self,
        db: Path | str,
        model: str | None = None,
        *,
        pack: Path | str | Pack | None = None,
        encoder: Encoder | None = None,
        user_vector: UserVector = "hybrid",
        half_life: float = 10.0,
        mean_half_life: float = MEAN_HALF_LIFE,
        lang: str = "en",
        verbose: bool = False,
        adapter: bool = True,
    ) -> None:
        check_user_vector(user_vector)
        for name, value in (("half_life", half_life), ("mean_half_life", mean_half_life)):
            if not isinstance(value, int | float) or not 0 < value < math.inf:
                raise InputError(f"{name} must be a positive number of events, got {value!r}")
        if not isinstance(db, str | Path):
            raise InputError(f"db must be a path, got {db!r}")
        if encoder is not None:
            require_encoder(encoder)
        _check_options(pack, model, lang, adapter, verbose)
        opened = open_pack(pack) if isinstance(pack, str | Path) else pack
        self._owns_pack = isinstance(pack, str | Path)
        if opened is not None:
            if model is not None and model != opened.model:
                raise InputError(
                    f"{opened.path} was built with model {opened.model!r}; give that model "
                    f"or none, not {model!r}"
                )
            model = opened.model
        self.spec: ModelSpec = load_registry().get(model) if encoder is None else encoder.spec
        if opened is not None and self.spec.name != opened.model:
            raise InputError(
                f"the encoder is {self.spec.name!r}, but {opened.path} was built with "
                f"{opened.model!r}; its vectors only match that model"
            )
        self.model = self.spec.name
        # Opened after the pack is checked: a bad pack leaves the private database untouched.
        try:
            self.store = Store(db, create=opened is not None)
        except BaseException:
            if opened is not None and self._owns_pack:
                opened.close()
            raise
        self.pack = opened
        self.catalogue: Catalogue = (
            DatabaseCatalogue(self.store, self.spec)
            if opened is None
            else PackCatalogue(opened, self.store, self.spec)
        )
        self.user_vector = user_vector
        self.half_life = half_life
        self.mean_half_life = mean_half_life
        self.lang = lang
        self._encoder = encoder
        self._owns_encoder = False
        self._verbose = verbose
        self._lock = threading.Lock()
        self.use_adapter = adapter
        # What every list of this Recommender should say (a pack of another model).
        self.notices: list[str] = (
            follow_pack(self.store, opened, lambda: self.encoder) if opened is not None else []
        )

    def close(self) -> None:
        """Close the database, and the pack and encoder this Recommender opened."""
        # An encoder the caller passed in is theirs to close; only the one opened here goes.
        if self._owns_encoder and self._encoder is not None:
            self._encoder.close()
        if self._owns_pack and self.pack is not None:
            self.pack.close()  # a Pack the caller passed in is theirs to close
        self.store.close()

    def __enter__(self) -> Recommender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pieces ----------------------------------------------------------------------------

    @property
    def encoder(self) -> Encoder:
        with self._lock:
            if self._encoder is None:
                if self.pack is not None:
                    require_pack_model(self.pack)
                # One context: a recommender embeds a query at a time, and every context
                # holds its own compute buffer (~36 MB for MiniLM).
                self._encoder = open_encoder(self.model, verbose=self._verbose, contexts=1)
                self._owns_encoder = True
            return self._encoder

    def _matrix(self, domain: str | None) -> ItemMatrix:
        return self.catalogue.item_matrix(domain)

    def _owned(
        self, user: str | None, history: AdHoc | None, profile: UserProfile
    ) -> list[HistoryItem]:
        """Every item of the user's history, also those that --from left out of `profile`."""
        if history is not None:
            return ad_hoc_history(self.catalogue, history)
        if user is None:
            return profile.items
        return [HistoryItem("", item_id=e.item_id) for e, _ in self.store.user_events(user)]

    def _history_vectors(self, items: list[HistoryItem]) -> np.ndarray:
        """Stored vectors for catalogue items; free text (and unencoded items) embedded now."""
        vectors = np.zeros((len(items), self.spec.dim), dtype=np.float32)
        missing: list[int] = []
        stored = self.catalogue.item_vectors([i.item_id for i in items if i.item_id])
        for i, item in enumerate(items):
            vector = stored.get(item.item_id) if item.item_id is not None else None
            if vector is not None and len(vector) == self.spec.dim:
                vectors[i] = vector
            else:
                missing.append(i)
        if missing:
            # Each distinct text is embedded once ("socks; socks; socks" is one text).
            texts = list(dict.fromkeys(items[i].text for i in missing))
            encoded = self.encoder.encode(texts)
            row = {text: r for r, text in enumerate(texts)}
            vectors[missing] = encoded[[row[items[i].text] for i in missing]]
        return vectors

    def profile(
        self,
        user: str | None = None,
        *,
        history: AdHoc | None = None,
        from_domains: Sequence[str] | None = None,
        user_vector: UserVector | None = None,
    ) -> UserProfile:
        method = user_vector or self.user_vector
        check_user_vector(method)
        from_domains = domain_list(from_domains)
        if user is None and history is None:
            raise InputError("give a stored user or an ad-hoc history")
        if user is not None and history is not None:
            raise InputError("give either a stored user or an ad-hoc history, not both")
        if user is not None and not isinstance(user, str):
            raise InputError(f"a user id is a string, got {user!r}")
        if history is not None:
            items = ad_hoc_history(self.catalogue, history)
            if from_domains:
                items = [i for i in items if i.domain is None or i.domain in from_domains]
        else:
            assert user is not None
            items = stored_history(self.store, self.catalogue, user, from_domains)
        if not items:
            return UserProfile(
                [], np.zeros((0, self.spec.dim), np.float32), np.zeros(0, np.float32)
            )
        weights = action_weights(self.store)
        vectors = self._history_vectors(items)
        profile = UserProfile.of(items, vectors, self.mean_half_life, weights)
        if method in NEEDS_TEXT:
            profile.text_vector = history_text_vector(
                self.store,
                self.spec,
                lambda: self.encoder,
                user,
                items,
                self.lang,
                self.half_life,
                weights,
            )
        return profile

    # -- the API ---------------------------------------------------------------------------

    def recommend(
        self,
        user: str | None = None,
        *,
        domain: str,
        history: AdHoc | None = None,
        k: int | None = 10,
        threshold: float | None = None,
        from_domains: Sequence[str] | None = None,
        user_vector: UserVector | None = None,
        explain: bool = False,
        include_seen: bool = False,
        fallback: bool = True,
        candidates: Sequence[str | int] | None = None,
    ) -> RecommendationList:
        """Top-k, threshold list R(u) (k=None with a threshold), or top-k of R(u), among
        every encoded item of `domain` or only among `candidates` (item ids of `domain`).

        `user` is a stored user's id, or `history` an ad-hoc user (text such as "bought a
        phone; rated a laptop 5/5", item ids, or (item id or text, action) pairs). `domain`
        is required: lists are per domain. `from_domains` limits the history to those
        domains; `user_vector` overrides the Recommender's; `explain` names the history
        items behind each item; `include_seen` keeps what the user has; `fallback` gives
        the most popular items to a user without usable history (flagged in the list's
        `fallback` and `notes`), else an empty list.

        The tuned hybrid standardises its parts over the items it ranks, so a list among
        `candidates` is ranked exactly as `localrec eval` ranks the same candidates.

        Args:
            user: A stored user's id; None with `history`.
            domain: The domain whose items are ranked.
            history: An ad-hoc user, stored nowhere: free text ("bought a phone; rated a
                laptop 5/5"), a list of item ids or texts, or (item id or text, action)
                pairs.
            k: How many items to return; None with a `threshold` returns all of R(u).
            threshold: Keep only items whose cosine s(u, p) is at least this.
            from_domains: Build the user from these domains' history only.
            user_vector: As in the constructor; None uses the Recommender's.
            explain: Give each item the history items behind it (`because`).
            include_seen: Keep the items the user already has.
            fallback: Give a user without usable history the domain's most popular items
                (flagged `fallback="popular"`); False gives an empty list instead.
            candidates: Rank only these item ids of `domain` (say, what is in stock).

        Returns:
            The list, with how it was made (`user_vector`, `fallback`, `notes`).

        Raises:
            InputError: An unknown domain, user vector or candidate, or a k or threshold
                out of range.
        """
        if not isinstance(domain, str) or not domain:
            raise InputError(
                f"domain must name the domain to recommend from (lists are per domain), got "
                f"{domain!r:.40}; the catalogue has: {', '.join(self.catalogue.domains())}"
            )
        validate_k_threshold(k, threshold)
        if k is None and threshold is None:
            k = 10
        method = user_vector or self.user_vector
        check_user_vector(method)
        from_domains = domain_list(from_domains)
        domain_matrix = self._matrix(domain)
        matrix = domain_matrix if candidates is None else candidate_pool(domain_matrix, candidates)
        for name in from_domains or ():
            self.catalogue.require_domain(name)
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
                "a threshold compares cosines: ranked by the zero-shot user vector, "
                "not the tuned adapter (its scores have no cosine scale)"
            )
        profile = self.profile(
            user,
            history=history,
            from_domains=from_domains,
            user_vector="item-mean" if tuned is not None else method,
        )
        if profile.empty:
            notes.append(cold_start_note(user, domain, fallback))
            items = []
            if fallback:
                owned = [] if include_seen else self._owned(user, history, profile)
                items = popular_items(self.catalogue, matrix, k or 10, {i.item_id for i in owned})
            kind = "popular" if fallback else None  # None: nothing shown, nothing to flag
            return RecommendationList(user, domain, method, items, kind, 0, self.notices + notes)
        label = zero_shot_method(method)
        if tuned is not None and tuned.knows(domain):
            scores = tuned.scores(profile, matrix, domain, blend=method == "hybrid")
            label = "tuned-hybrid" if method == "hybrid" else "tuned"
        elif method == "tuned":
            why = tuned.adapter.dropped.get(domain, "it was trained without it") if tuned else ""
            raise InputError(
                f"the tuned adapter has no model for {domain!r} ({why}); "
                "use --user-vector hybrid, which falls back to zero-shot text there"
            )
        else:
            scores = profile.scores(label, matrix.matrix)
        if not include_seen:
            index = matrix.index()
            owned = self._owned(user, history, profile) if from_domains else profile.items
            seen = [index[i.item_id] for i in owned if i.item_id in index]
            scores = scores.copy()
            scores[seen] = -np.inf
        rows = select(scores, k, threshold)
        reasons = None
        if explain and label == "tuned-hybrid" and tuned is not None:
            # The hybrid's CF part is what carries a user across domains: say so when it did.
            reasons = tuned.cf_reasons(profile, matrix, domain)
        recs = listed(self.catalogue, matrix, rows, scores, profile if explain else None, reasons)
        used = {i.domain for i in profile.items}
        notes += catalogue_notes(self.catalogue, domain_matrix, matrix, candidates is None, used)
        size = len(profile.items)
        return RecommendationList(user, domain, label, recs, None, size, self.notices + notes)

    def stats(self) -> dict[str, Any]:
        """The database's counts (`Store.stats`) and its stale item vectors per model
        (`stale_vectors`); with a pack, the pack's catalogue too, and how many events name
        items that are not in the catalogue (kept, but skipped)."""
        return self.catalogue.stats()

    def record(
        self,
        user: str,
        item: str | int,
        action: str = "view",
        value: float | None = None,
        time: float | str | None = None,
    ) -> None:
        """Record one event of `user` in the database (the private one beside a pack); the
        next `recommend` sees it.

        Args:
            user: The user's id.
            item: An item id of the catalogue (the pack's, or the database's).
            action: What the user did: purchase, rate, review, listen, wishlist, view, ...
            value: A rating (a `rate` on a 0-5 scale) or a weight; None for none.
            time: Seconds since the epoch or an ISO 8601 date; now when None.
        """
        record = {"user": user, "item": item, "action": action, "value": value, "time": time}
        known = self.pack.index if self.pack is not None else None
        add_events(self.store, [record], source="record()", known_items=known)

    def score(
        self,
        user: str | None,
        item_ids: Sequence[str | int],
        *,
        history: AdHoc | None = None,
        from_domains: Sequence[str] | None = None,
        user_vector: UserVector | None = None,
    ) -> list[Recommendation]:
        """s(u, p) for the given items, in the order given: cosines of a zero-shot user vector
        (the scale a threshold compares), also when `recommend` ranks with a tuned adapter.

        Args:
            user: A stored user's id; None with `history`.
            item_ids: The items to score, of any domain.
            history: An ad-hoc user, as in `recommend`.
            from_domains: Build the user from these domains' history only.
            user_vector: A zero-shot user vector (not "tuned"); None uses the
                Recommender's ("hybrid" scores as "zero-shot").
        """
        method = user_vector or self.user_vector
        if method == "tuned":
            raise InputError(
                "scores are cosines s(u,p), and the tuned adapter's scores are not cosines; "
                "use recommend with user_vector='tuned' for its ranking"
            )
        if isinstance(item_ids, str | bytes):
            raise InputError("score() takes a list of item ids, not one id")
        ids = [as_item_id(i) for i in item_ids]
        everything = self.catalogue.item_matrix(None)
        index = everything.index()
        unknown = [i for i in ids if i not in index]
        if unknown:
            raise InputError(f"unknown or unencoded item(s): {', '.join(map(repr, unknown[:5]))}")
        rows = np.array([index[i] for i in ids], dtype=np.int64)
        profile = self.profile(user, history=history, from_domains=from_domains, user_vector=method)
        if profile.empty:
            raise InputError(f"user {user!r} has no usable history to score with")
        scores = profile.scores(zero_shot_method(method), everything.matrix[rows])
        sub = ItemMatrix(
            self.model,
            None,
            tuple(ids),
            tuple(everything.domains[r] for r in rows),
            everything.matrix[rows],
        )
        return listed(self.catalogue, sub, np.arange(len(rows)), scores, None)

    def similar(
        self, item_id: str | int, *, domain: str | None = None, k: int = 10
    ) -> list[Recommendation]:
        """The `k` items whose text vectors are closest to `item_id`'s (cosines), in
        `domain`, else in the item's own domain; the item itself is left out."""
        validate_k_threshold(k, None)
        wanted = as_item_id(item_id)
        source = self.catalogue.get_items([wanted]).get(wanted)
        if source is None:
            raise InputError(f"unknown item {wanted!r}")
        matrix = self._matrix(domain or source.domain)
        vector = self._history_vectors([HistoryItem(item_text(source), item_id=wanted)])[0]
        scores = cosine_scores(matrix.matrix, vector)
        allowed = np.array([i for i, x in enumerate(matrix.ids) if x != wanted], dtype=np.int64)
        rows = select(scores, k, None, allowed)
        return listed(self.catalogue, matrix, rows, scores, None)

    # -- helpers ---------------------------------------------------------------------------

    def has_adapter(self) -> bool:
        """Whether `recommend`'s hybrid ranks with a tuned adapter (cheap: nothing is loaded)."""
        return self.use_adapter and self.catalogue.has_adapter()

    def _tuned(self) -> TunedCatalogue | None:
        """The tuned hybrid over the catalogue (the database's adapter and item-kNN over its
        events, or the pack's adapter and neighbours); None without an adapter."""
        if not self.has_adapter():
            return None
        return self.catalogue.tuned(self.mean_half_life)
