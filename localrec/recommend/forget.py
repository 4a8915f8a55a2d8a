"""Forgetting a user: their events and vectors leave the database and its backups, and a
tuned adapter trained on them is named, or trained again without them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from localrec.store.db import Store
from localrec.tuning.run import tune_database
from localrec.tuning.storage import load_adapter

__all__ = ["ForgetReport", "forget_user"]


@dataclass(frozen=True)
class ForgetReport:
    """What `forget_user` did."""

    user: str
    # Rows of the user's events and vectors deleted; 0 means the database held nothing of
    # the user.
    rows: int
    # Models whose tuned adapter was trained again without the user.
    retrained: tuple[str, ...] = ()
    # Models whose tuned adapter was kept: trained on this database's events, it may still
    # carry what it learned from the user's, until `tune` runs again.
    kept_adapters: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return self.rows > 0

    def notes(self) -> list[str]:
        if not self.kept_adapters:
            return []
        models = ", ".join(self.kept_adapters)
        return [
            f"the tuned adapter of {models} was trained on this database's events and may "
            f"still carry what it learned from {self.user!r}'s; run `localrec tune` again "
            "(or forget with --retrain) so that it does not"
        ]


def forget_user(
    store: Store,
    user: str,
    *,
    retrain: bool = False,
    on_retrain: Callable[[str], None] | None = None,
) -> ForgetReport:
    """Delete every event and vector of `user` (here and in the database's backups), then
    VACUUM. With `retrain`, each stored adapter is tuned again, with its own settings, on
    what is left; `on_retrain(model)` is called before each. An unknown user changes
    nothing and retrains nothing."""
    rows = store.forget_user(user)
    trained = list(store.adapter_models()) if rows else []
    if not retrain or not trained:
        return ForgetReport(user, rows, kept_adapters=tuple(trained))
    for model in trained:
        if on_retrain is not None:
            on_retrain(model)
        old = load_adapter(store, model)
        # An adapter of a sample is tuned again on a sample of the same size, at most
        # every user left.
        sample = None
        if old is not None and old.sample is not None:
            sample = min(old.sample.users, len(store.user_ids()))
        tune_database(store, model, old.config if old is not None else None, sample_users=sample)
    return ForgetReport(user, rows, retrained=tuple(trained))
