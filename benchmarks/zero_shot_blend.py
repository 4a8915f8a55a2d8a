"""Lexical + semantic zero-shot scores against max-sim and the zero-shot default (issue 17).

    LOCALREC_HOME=... .venv/bin/python benchmarks/zero_shot_blend.py [DATASET_DIR] [--model NAME]

Scores, on the eval protocol (999 negatives, negative-draw seed 42, both settings), with
`localrec.evaluation.protocol.evaluate` and the same candidates as `localrec eval`:

- `max-sim` and `zero-shot` (the default as it stands), `EmbeddingScorer` as eval's rows;
- `lexical`: the TF-IDF cosine over titles (`localrec.scoring.lexical`, no scikit-learn);
- blends, each score standardised over the case's candidates (z) or left a cosine (cos):
  `z(BASE) + w z(lexical)` for BASE max-sim or zero-shot, and `(max-sim + w lexical) /
  (1 + w)`, over a small grid of w.

(a) on the validation set `tune` chooses on (each multi-domain training user's last
training item, `held_out_from_training`, plus valid.txt; 8,461 cases per setting on
Food-Kitchen) and (b) on the test split. The blend is chosen on (a) alone: the best mean
NDCG@10 over the four cells. Prints NDCG@10 % per method and cell, then, per cell, the
chosen blend minus each of max-sim, the zero-shot default and lexical (paired per-case
difference, its standard error and 95% bootstrap interval, `eval --compare`'s).
Needs the dataset's vectors in the cache: run `localrec eval DATASET_DIR` once first.
The figures and the decision they led to are in docs/results.md (Zero-shot).
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.5)
COSINE_WEIGHTS = (0.25, 0.5, 1.0)


@dataclass
class Components:
    """max-sim, zero-shot and lexical scores of one chunk, computed once for every row."""

    score: Callable[[str, Sequence[Any], np.ndarray], np.ndarray]
    kept: dict[tuple[bytes, str], np.ndarray]

    def get(self, part: str, histories: Sequence[Any], candidates: np.ndarray) -> np.ndarray:
        digest = hashlib.sha1(candidates.tobytes())
        for h in histories:
            digest.update(np.asarray(h, dtype=np.int64).tobytes() + b"|")
        key = (digest.digest(), part)
        if key not in self.kept:
            self.kept[key] = self.score(part, histories, candidates)
        return self.kept[key]


@dataclass
class Row:
    """A row of the run: a component alone, or a blend of two."""

    name: str
    parts: Components
    base: str
    weight: float = 0.0
    kind: str = "alone"  # "alone", "z" or "cos"

    def score(self, histories: Sequence[Any], candidates: np.ndarray, domain: int) -> np.ndarray:
        from localrec.scoring.hybrid import standardise

        base = self.parts.get(self.base, histories, candidates).astype(np.float64)
        if self.kind == "alone":
            return base
        lexical = self.parts.get("lexical", histories, candidates).astype(np.float64)
        if self.kind == "z":
            out: np.ndarray = standardise(base) + self.weight * standardise(lexical)
            return out
        return (base + self.weight * lexical) / (1.0 + self.weight)


def rows_of(parts: Components) -> list[Row]:
    rows = [Row(name, parts, name) for name in ("max-sim", "zero-shot", "lexical")]
    for base in ("max-sim", "zero-shot"):
        rows += [Row(f"z({base})+{w:g}z(lex)", parts, base, w, "z") for w in WEIGHTS]
    rows += [Row(f"cos(max-sim+{w:g}lex)", parts, "max-sim", w, "cos") for w in COSINE_WEIGHTS]
    return rows


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    sys.path.insert(0, str(REPO))
    from localrec.data.loading import load_cached_dataset
    from localrec.data.protocol import SETTINGS, held_out_from_training, ndcg_per_case
    from localrec.evaluation.comparison import paired_differences
    from localrec.evaluation.protocol import evaluate
    from localrec.evaluation.results import EvalReport
    from localrec.scoring.history import histories_of_rows
    from localrec.scoring.lexical import LexicalIndex, lexical_scores
    from localrec.scoring.profiles import hybrid_blend, zero_shot_scores
    from scripts.food_kitchen import food_kitchen_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", nargs="?", type=Path, default=food_kitchen_dir(REPO))
    parser.add_argument("--model")
    args = parser.parse_args()
    cached = load_cached_dataset(args.dataset, args.model)
    if not cached.complete:
        raise SystemExit(f"not every item is encoded: run `localrec eval {args.dataset}` first")
    dataset, vectors = cached.dataset, cached.vectors
    wall, cpu = time.perf_counter(), cpu_seconds()
    index = LexicalIndex.build(dataset.titles)
    print(
        f"lexical index of {dataset.n_items} titles: {len(index.vocabulary)} terms, "
        f"{index.rows.nnz} entries, {index.nbytes / 1e6:.2f} MB, built in "
        f"{time.perf_counter() - wall:.2f} s wall, {cpu_seconds() - cpu:.2f} s CPU"
    )

    def score(part: str, histories: Sequence[Any], candidates: np.ndarray) -> np.ndarray:
        rows = histories_of_rows(histories)
        if part == "lexical":
            return lexical_scores(rows, candidates, index)
        if part == "zero-shot":
            # profile_scores' own steps, with max-sim's scores computed once for both rows.
            mean = zero_shot_scores("item-mean", rows, candidates, vectors)
            return hybrid_blend(parts_of_run.get("max-sim", histories, candidates), mean)
        return zero_shot_scores(part, rows, candidates, vectors)

    fit, cut = held_out_from_training(dataset)
    parts_of_run = Components(score, {})
    reports: dict[str, EvalReport] = {}
    for split, data in (("valid", fit), ("test", dataset)):
        wall, cpu = time.perf_counter(), cpu_seconds()
        per_setting = []
        for setting in SETTINGS:
            # One setting at a time, so the kept components of one are freed before the next.
            parts_of_run = Components(score, {})
            per_setting.append(evaluate(data, split, (setting,), rows_of(parts_of_run)))  # type: ignore[arg-type]
        reports[split] = replace(
            per_setting[0],
            rows=[r for p in per_setting for r in p.rows],
            cases={k: v for p in per_setting for k, v in p.cases.items()},
            slices=[r for p in per_setting for r in p.slices],
        )
        cases = len(data.valid if split == "valid" else data.test)
        gained = f" ({cut} cut from training)" if split == "valid" else ""
        print(
            f"{split}: {cases} cases per setting{gained}, scored in "
            f"{time.perf_counter() - wall:.1f} s wall, {cpu_seconds() - cpu:.1f} s CPU"
        )
    cells = [(s, d) for s in SETTINGS for d in dataset.domain_names]
    ndcg = {
        split: {(r.method, r.setting, r.domain): 100 * r.ndcg_10 for r in report.rows}
        for split, report in reports.items()
    }
    names = [r.method for r in reports["valid"].rows if (r.setting, r.domain) == cells[0]]
    header = " ".join(f"{s + ' ' + d:>14}" for s, d in cells)
    for split in reports:
        print(f"\nNDCG@10 % on {split}\n{'method':<26} {header}")
        for name in names:
            print(
                f"{name:<26} " + " ".join(f"{ndcg[split][(name, s, d)]:>14.2f}" for s, d in cells)
            )
    blends = [n for n in names if n not in ("max-sim", "zero-shot", "lexical")]
    chosen = max(blends, key=lambda n: np.mean([ndcg["valid"][(n, s, d)] for s, d in cells]))
    print(f"\nchosen on validation (best mean of the four cells): {chosen}")
    for split, report in reports.items():
        print(f"\n{split}: {chosen} minus each, points (standard error) [95% interval]")
        for base in ("max-sim", "zero-shot", "lexical"):
            for p in paired_differences(report, base):
                if p.method != chosen:
                    continue
                here = report.cases[(chosen, p.setting)]
                there = report.cases[(base, p.setting)]
                mask = here.domains == dataset.domain_names.index(p.domain)
                diff = ndcg_per_case(here.ranks[mask], 10) - ndcg_per_case(there.ranks[mask], 10)
                se = diff.std(ddof=1) / np.sqrt(len(diff))
                print(
                    f"  - {base:<10} {p.setting:<6} {p.domain:<8} {100 * p.difference:+6.2f} "
                    f"({100 * se:.2f}) [{100 * p.low:+.2f}, {100 * p.high:+.2f}] "
                    f"n={p.n}{'  > 1 SE' if p.difference > se else ''}"
                )


if __name__ == "__main__":
    main()
