"""Choosing θ for threshold lists by replaying each user's held-out last event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from localrec.errors import InputError
from localrec.recommend.recommender import Recommender, UserVector, zero_shot_method

__all__ = [
    "MIN_REPLAYED_USERS",
    "ThresholdPoint",
    "ThresholdReport",
    "plot_curve",
    "suggest_threshold",
]

# Below this many replayed users a suggested θ is mostly noise: recall is the share of
# users whose held-out item made their list, so one user moves it by more than 3 points,
# and the F1 peak by as much; the report then says so.
MIN_REPLAYED_USERS = 30


@dataclass(frozen=True)
class ThresholdPoint:
    """Precision, recall and mean list size of R(u) at one θ."""

    theta: float
    precision: float
    recall: float
    mean_size: float

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "theta": self.theta,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "mean_size": self.mean_size,
        }


@dataclass(frozen=True)
class ThresholdReport:
    """The curve over θ, and the θ with the best F1, from `users` replayed users; `notes`
    warn when they are fewer than `MIN_REPLAYED_USERS`."""

    domain: str
    users: int
    points: list[ThresholdPoint]
    suggested: ThresholdPoint
    notes: list[str] = field(default_factory=list)

    @property
    def enough_users(self) -> bool:
        return self.users >= MIN_REPLAYED_USERS

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data: what `localrec threshold suggest --json` prints."""
        return {
            "domain": self.domain,
            "users": self.users,
            "min_users": MIN_REPLAYED_USERS,
            "enough_users": self.enough_users,
            "suggested": self.suggested.theta,
            "notes": list(self.notes),
            "curve": [p.to_dict() for p in self.points],
        }


def suggest_threshold(
    rec: Recommender,
    domain: str,
    *,
    user_vector: UserVector | None = None,
    from_domains: Sequence[str] | None = None,
    thetas: Sequence[float] | None = None,
    max_users: int | None = None,
) -> ThresholdReport:
    """For every user whose last event is in `domain`, hide it and score the domain.

    Precision is the share of recommended items that were the held-out one (summed over
    users), recall the share of users whose held-out item made their list.
    """
    matrix = rec.catalogue.item_matrix(domain)
    index = matrix.index()
    grid = np.asarray(thetas if thetas is not None else np.round(np.arange(-0.2, 1.0001, 0.025), 3))
    hits = np.zeros(len(grid))
    sizes = np.zeros(len(grid))
    users = 0
    for events in rec.store.user_sequences().values():
        if len(events) < 2 or events[-1][0] not in index:
            continue
        target = index[events[-1][0]]
        history = [(item, action) for item, action, _ in events[:-1]]
        profile = rec.profile(history=history, from_domains=from_domains, user_vector=user_vector)
        if profile.empty:
            continue
        scores = profile.scores(zero_shot_method(user_vector or rec.user_vector), matrix.matrix)
        # Everything the user had before, also what --from leaves out of the profile.
        seen = [index[item] for item, _ in history if item in index]
        scores[seen] = -np.inf
        ordered = np.sort(scores)
        # Items with score >= theta, for every theta at once.
        sizes += len(scores) - np.searchsorted(ordered, grid, side="left")
        hits += scores[target] >= grid
        users += 1
        if max_users is not None and users >= max_users:
            break
    if users == 0:
        raise InputError(
            f"no user has a held-out last event in {domain!r} with earlier history to replay"
        )
    points = [
        ThresholdPoint(
            theta=float(t),
            precision=float(h / s) if s > 0 else 0.0,
            recall=float(h / users),
            mean_size=float(s / users),
        )
        for t, h, s in zip(grid, hits, sizes, strict=True)
    ]
    best = max(points, key=lambda p: (p.f1, p.theta))
    notes = []
    if users < MIN_REPLAYED_USERS:
        notes.append(
            f"only {users} user(s) replayed, fewer than {MIN_REPLAYED_USERS}: the suggested "
            f"θ = {best.theta:g} rests on too few held-out events to trust; record more "
            "users' events, or choose θ by hand"
        )
    return ThresholdReport(domain, users, points, best, notes)


def plot_curve(report: ThresholdReport, path: Path) -> None:
    """Precision and recall against θ, with the mean list size; needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'localrec[eval]'") from None
    thetas = [p.theta for p in report.points]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(thetas, [p.recall for p in report.points], label="recall")
    ax.plot(thetas, [p.precision for p in report.points], label="precision")
    ax.plot(thetas, [p.f1 for p in report.points], label="F1", linestyle="--")
    ax.axvline(
        report.suggested.theta, color="grey", linestyle=":", label=f"θ = {report.suggested.theta:g}"
    )
    ax.set_xlabel("θ (cosine)")
    ax.set_ylabel("precision / recall")
    ax.set_yscale("log")
    size_axis = ax.twinx()
    size_axis.plot(
        thetas,
        [max(p.mean_size, 1e-3) for p in report.points],
        color="black",
        alpha=0.4,
        label="mean |R(u)|",
    )
    size_axis.set_yscale("log")
    size_axis.set_ylabel("mean list size |R(u)|")
    ax.legend(loc="lower left")
    ax.set_title(f"Threshold lists in {report.domain} ({report.users} users)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
