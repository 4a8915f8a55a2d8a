"""Paired differences between two methods of one evaluation, with bootstrap intervals.

Every method of a run ranks the same targets against the same candidates, so the honest
question "is A better than B here?" is about the per-case differences, not two means
with their own noise. On the Food-Kitchen splits (a few hundred cases per domain), a
difference of a few tenths of a point in NDCG@10 is well inside the noise; this says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from localrec.data.protocol import ndcg_per_case
from localrec.errors import InputError
from localrec.evaluation.results import EvalReport, PairedDifference

__all__ = ["PairedDifference", "paired_differences", "require_method"]

RESAMPLES = 2000
CONFIDENCE = 0.95


def paired_differences(
    report: EvalReport, baseline: str, *, resamples: int = RESAMPLES, seed: int = 0
) -> list[PairedDifference]:
    """Every other method against `baseline`, per setting and domain of the report.

    The interval is the percentile bootstrap of the mean per-case difference: cases are
    resampled with replacement, the same draw for both methods (seeded, so a rerun prints
    the same interval).
    """
    require_method(baseline, list(dict.fromkeys(r.method for r in report.rows)))
    out: list[PairedDifference] = []
    for (method, setting), cases in report.cases.items():
        base = report.cases.get((baseline, setting))
        if method == baseline or base is None:
            continue
        for domain_index, domain in enumerate(report.domain_names):
            mask = cases.domains == domain_index
            if not mask.any():
                continue
            # The same cases in the same order, or the pairing would be meaningless.
            assert np.array_equal(cases.targets[mask], base.targets[mask])
            diff = ndcg_per_case(cases.ranks[mask], 10) - ndcg_per_case(base.ranks[mask], 10)
            low, high = _bootstrap_interval(diff, resamples, seed)
            out.append(
                PairedDifference(
                    method, baseline, setting, domain, float(diff.mean()), low, high, len(diff)
                )
            )
    return out


def require_method(name: str, methods: Sequence[str]) -> None:
    """Refuse a baseline that is not one of the run's methods, naming those."""
    if name not in methods:
        raise InputError(
            f"cannot compare with {name!r}: it is not a method of this evaluation; "
            f"choose one of {', '.join(methods)}"
        )


def _bootstrap_interval(values: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    # In blocks, so memory stays small for full-size splits.
    for start in range(0, resamples, 256):
        stop = min(start + 256, resamples)
        picks = rng.integers(0, len(values), size=(stop - start, len(values)))
        means[start:stop] = values[picks].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
