"""What each endpoint does: the library calls the CLI makes, on one `Recommender` shared by
every request, under a lock that lets reads overlap and lets a write run alone.

No HTTP here: the routes (app.py) parse, call one method and return its answer. A library
error about the caller's input is raised as a 422 naming the request field (`blame`).
"""

from __future__ import annotations

from typing import Any

from localrec.errors import NotEncoded
from localrec.recommend.candidates import candidate_pool
from localrec.recommend.history import AdHoc, ad_hoc_events
from localrec.recommend.recommender import Recommender
from localrec.serve.locking import ReadWriteLock
from localrec.serve.problems import ApiError, blame
from localrec.serve.schemas import (
    MAX_HISTORY,
    ForgetRequest,
    HistoryPair,
    RecommendRequest,
    RecordRequest,
    ScoreRequest,
    SimilarRequest,
    Target,
)
from localrec.store.ingest import add_events

__all__ = ["Service"]


class Service:
    """One opened `Recommender` (the model and pack loaded once) and the lock around it."""

    def __init__(
        self, recommender: Recommender, *, token_for: str = "writes", version: str = "unknown"
    ) -> None:
        self.rec = recommender
        self.version = version
        self.lock = ReadWriteLock()
        self.token_for = token_for
        self.closed = False

    def warm_up(self) -> None:
        """Load what the first requests would otherwise wait for: the model, the tuned
        hybrid and each domain's items (and so decode the pack's adapter once, alone)."""
        with self.lock.writing():
            domains = self.rec.catalogue.domains()
            if not domains:
                return
            _ = self.rec.encoder
            for domain in domains:
                try:
                    self.rec.recommend(history="warm-up", domain=domain, k=1)
                except NotEncoded:
                    continue  # its requests say so (503), the other domains are served

    def close(self) -> None:
        """Close the Recommender once every request in flight has finished."""
        with self.lock.writing():
            if not self.closed:
                self.closed = True
                self.rec.close()

    # -- reads -------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        with self.lock.reading():
            return {
                "status": "ok",
                "version": self.version,
                "model": self.rec.model,
                "pack": str(self.rec.pack.path) if self.rec.pack is not None else None,
                "db": str(self.rec.store.path),
                "domains": self.rec.catalogue.domains(),
                "adapter": self.rec.has_adapter(),
                "token_for": self.token_for,
            }

    def stats(self) -> dict[str, Any]:
        """What `localrec stats --json` prints (with a pack: its counts too)."""
        with self.lock.reading():
            return self.rec.stats()

    def users(self, limit: int) -> dict[str, Any]:
        with self.lock.reading():
            return {"users": [{"user": u, "events": n} for u, n in self.rec.store.users(limit)]}

    def recommend(self, body: RecommendRequest) -> dict[str, Any]:
        history = _history(body)
        with self.lock.reading():
            self._check_domains(body.domain, body.from_)
            if body.candidates is not None:
                with blame("candidates"):
                    candidate_pool(self.rec.catalogue.item_matrix(body.domain), body.candidates)
            with blame("history" if history is not None else "user_vector"):
                result = self.rec.recommend(
                    body.user,
                    domain=body.domain,
                    history=history,
                    k=body.k,
                    threshold=body.threshold,
                    from_domains=body.from_,
                    user_vector=body.user_vector,
                    explain=body.explain,
                    include_seen=body.include_seen,
                    fallback=body.fallback,
                    candidates=body.candidates,
                )
        return result.to_dict()

    def score(self, body: ScoreRequest) -> dict[str, Any]:
        history = _history(body)
        with self.lock.reading():
            self._check_domains(None, body.from_)
            known = self.rec.catalogue.item_matrix(None).index()
            unknown = [i for i in map(str, body.items) if i not in known]
            if unknown:
                shown = ", ".join(map(repr, unknown[:5]))
                raise ApiError(422, f"unknown or unencoded item(s): {shown}", "items")
            with blame("history" if history is not None else "user"):
                scored = self.rec.score(
                    body.user,
                    body.items,
                    history=history,
                    from_domains=body.from_,
                    user_vector=body.user_vector,
                )
            tuned = self.rec.has_adapter() and body.user_vector in (None, "hybrid")
        notes = ["cosines of the zero-shot user vector; recommend ranks with the adapter"]
        return {"notes": notes if tuned else [], "items": [r.to_dict() for r in scored]}

    def similar(self, body: SimilarRequest) -> dict[str, Any]:
        with self.lock.reading():
            self._check_domains(body.domain, None)
            with blame("item"):
                items = self.rec.similar(body.item, domain=body.domain, k=body.k)
        return {"notes": [], "items": [r.to_dict() for r in items]}

    # -- writes ------------------------------------------------------------------------------

    def record(self, body: RecordRequest) -> dict[str, Any]:
        """The events in one transaction, checked as `localrec add events` checks a file's
        (beside a pack, against the pack's catalogue): all of them are stored, or none."""
        records = [event.as_record() for event in body.events]
        with self.lock.writing(), blame("events"):
            known = self.rec.pack.index if self.rec.pack is not None else None
            report = add_events(self.rec.store, records, source="events", known_items=known)
        return {"stored": report.stored}

    def forget(self, body: ForgetRequest) -> dict[str, Any]:
        """What `localrec forget USER` does: every event and vector of the user, then VACUUM."""
        with self.lock.writing():
            deleted = self.rec.store.forget_user(body.user)
        return {"user": body.user, "deleted": deleted}

    # -- checks ------------------------------------------------------------------------------

    def _check_domains(self, domain: str | None, from_domains: list[str] | None) -> None:
        """The library's own domain check, on each field that names a domain."""
        if domain is not None:
            with blame("domain"):
                self.rec.catalogue.require_domain(domain)
        for i, name in enumerate(from_domains or ()):
            with blame(f"from[{i}]"):
                self.rec.catalogue.require_domain(name)


def _history(body: Target) -> AdHoc | None:
    """The ad-hoc history as the library takes it, its length checked; a stored user or a
    history, exactly one."""
    if (body.user is None) == (body.history is None):
        raise ApiError(422, "give a stored `user` or an ad-hoc `history` (one of them)", "user")
    if body.history is None:
        return None
    history: AdHoc
    if isinstance(body.history, str):
        history = body.history
    else:
        history = [
            (e.item, e.action) if isinstance(e, HistoryPair) else (e, "purchase")
            for e in body.history
        ]
    with blame("history"):
        events = ad_hoc_events(history)
    if not events:
        raise ApiError(422, "the history has no events", "history")
    if len(events) > MAX_HISTORY:
        raise ApiError(
            422, f"the history has {len(events)} events; at most {MAX_HISTORY}", "history"
        )
    return history
