"""The evaluation as a table, and as a Markdown report with two charts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from localrec.data.protocol import METRICS, SLICES
from localrec.errors import InputError
from localrec.evaluation.comparison import RESAMPLES
from localrec.evaluation.results import EvalReport, PairedDifference

__all__ = ["format_results", "report_dict", "write_report"]

HISTORY_BUCKETS = ((1, 2), (3, 5), (6, 10), (11, 20), (21, 10_000))
CLEAR_NOTE = "*: the interval excludes 0, a difference these cases can tell apart"


def report_dict(report: EvalReport) -> dict[str, Any]:
    """The evaluation as JSON-able data: what `localrec eval --json` prints. The paired
    comparisons are there only when the run was asked for them."""
    data: dict[str, Any] = {
        "split": report.split,
        "negatives": report.n_negatives,
        "seed": report.seed,
        "results": report.as_dicts(),
        "slices": report.slice_dicts(),
    }
    if report.comparisons:
        data["comparisons"] = [c.as_dict() for c in report.comparisons]
    return data


def format_results(report: EvalReport) -> str:
    """One row per method, setting and domain; metrics in %."""
    head = f"{'method':<26} {'setting':<7} {'domain':<9}" + "".join(f"{m:>12}" for m in METRICS)
    lines = [head + f"{'n':>6}", "-" * (len(head) + 6)]
    for r in report.rows:
        values = "".join(f"{100 * r.metric(m):>12.2f}" for m in METRICS)
        lines.append(f"{r.method:<26} {r.setting:<7} {r.domain:<9}{values}{r.n:>6}")
    protocol = "full ranking" if report.n_negatives is None else f"{report.n_negatives} negatives"
    lines.append(f"\n{report.split} split, {protocol}, seed {report.seed}; metrics in %")
    if report.slices:
        cells, table = slice_table(report)
        head = f"{'slice':<13} {'method':<26}" + "".join(f"{c:>16}" for c in cells)
        lines += ["", "NDCG@10 (%) where CF has little to go on", head, "-" * len(head)]
        for (name, method), row_cells in table.items():
            lines.append(f"{name:<13} {method:<26}" + "".join(f"{v:>16}" for v in row_cells))
        lines += [f"{name}: {what}" for name, what in SLICES.items()]
    if report.comparisons:
        baseline = report.comparisons[0].baseline
        head = f"{'method':<26} {'setting':<7} {'domain':<9}{'difference':>12}{'95% interval':>20}"
        lines += ["", comparison_title(baseline), head + f"{'n':>6}", "-" * (len(head) + 6)]
        for c in report.comparisons:
            difference, interval = comparison_cells(c)
            lines.append(
                f"{c.method:<26} {c.setting:<7} {c.domain:<9}{difference:>12}{interval:>20}{c.n:>6}"
            )
        lines.append(CLEAR_NOTE)
    return "\n".join(lines)


def comparison_title(baseline: str) -> str:
    return (
        f"NDCG@10 minus {baseline}'s on the same cases, in points "
        f"(95% paired bootstrap interval, {RESAMPLES} resamples)"
    )


def comparison_cells(c: PairedDifference) -> tuple[str, str]:
    """The difference and its interval in points, the interval starred when it excludes 0."""
    interval = f"[{100 * c.low:+.2f}, {100 * c.high:+.2f}]" + (" *" if c.clear else "  ")
    return f"{100 * c.difference:+.2f}", interval


def slice_table(report: EvalReport) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    """Columns "setting domain (n=...)", and per (slice, method) the NDCG@10 cells in %."""
    keys = list(dict.fromkeys((r.slice, r.setting, r.domain) for r in report.slices))
    columns = list(dict.fromkeys((setting, domain) for _, setting, domain in keys))
    sizes = {(r.slice, r.setting, r.domain): r.n for r in report.slices}
    found = {(r.slice, r.method, r.setting, r.domain): r.ndcg_10 for r in report.slices}
    table: dict[tuple[str, str], list[str]] = {}
    for r in report.slices:
        if (r.slice, r.method) in table:
            continue
        table[(r.slice, r.method)] = [
            f"{100 * found[(r.slice, r.method, s, d)]:.2f} (n={sizes[(r.slice, s, d)]})"
            if (r.slice, r.method, s, d) in found
            else "-"
            for s, d in columns
        ]
    return [f"{s} {d}" for s, d in columns], table


def _pyplot() -> object:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--report needs matplotlib: pip install 'localrec[eval]'") from None
    return plt


def _bar_chart(report: EvalReport, path: Path) -> None:
    plt: object = _pyplot()
    methods = list(dict.fromkeys(r.method for r in report.rows))
    cells = list(dict.fromkeys((r.setting, r.domain) for r in report.rows))
    fig, ax = plt.subplots(figsize=(max(8, len(methods) * 0.9), 4.5))  # type: ignore[attr-defined]
    width = 0.8 / len(cells)
    for j, (setting, domain) in enumerate(cells):
        values = []
        for m in methods:
            try:
                values.append(100 * report.row(m, setting, domain).ndcg_10)
            except KeyError:
                values.append(0.0)
        ax.bar(np.arange(len(methods)) + j * width, values, width, label=f"{setting} / {domain}")
    ax.set_xticks(np.arange(len(methods)) + 0.4 - width / 2)
    ax.set_xticklabels(methods, rotation=30, ha="right")
    ax.set_ylabel("NDCG@10 (%)")
    ax.legend()
    ax.set_title("NDCG@10 by method, setting and target domain")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)  # type: ignore[attr-defined]


def ndcg_by_history_length(report: EvalReport, method: str, setting: str) -> list[float | None]:
    cases = report.cases[(method, setting)]
    gain = np.where(cases.ranks <= 10, 1.0 / np.log2(cases.ranks + 1.0), 0.0)
    out: list[float | None] = []
    for low, high in HISTORY_BUCKETS:
        mask = (cases.history_lengths >= low) & (cases.history_lengths <= high)
        out.append(float(gain[mask].mean()) if mask.any() else None)
    return out


def _length_chart(report: EvalReport, methods: Sequence[str], setting: str, path: Path) -> None:
    plt: object = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))  # type: ignore[attr-defined]
    labels = [f"{lo}-{hi}" if hi < 10_000 else f"{lo}+" for lo, hi in HISTORY_BUCKETS]
    for method in methods:
        if (method, setting) not in report.cases:
            continue
        values = ndcg_by_history_length(report, method, setting)
        ax.plot(
            labels, [100 * v if v is not None else np.nan for v in values], marker="o", label=method
        )
    ax.set_xlabel(f"history length ({setting} setting)")
    ax.set_ylabel("NDCG@10 (%)")
    ax.legend(fontsize=8)
    ax.set_title("NDCG@10 against history length")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)  # type: ignore[attr-defined]


def write_report(report: EvalReport, directory: Path, command: str) -> Path:
    """report.md with the results table and the two charts beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    _bar_chart(report, directory / "ndcg10_by_method.png")
    methods = list(dict.fromkeys(r.method for r in report.rows))
    settings = list(dict.fromkeys(r.setting for r in report.rows))
    for setting in settings:
        _length_chart(report, methods, setting, directory / f"ndcg10_by_history_{setting}.png")
    lines = [
        "# localrec evaluation",
        "",
        f"Command: `{command}`",
        "",
        "| method | setting | domain | " + " | ".join(METRICS) + " | n |",
        "|---|---|---|" + "---|" * len(METRICS) + "---|",
    ]
    for r in report.rows:
        values = " | ".join(f"{100 * r.metric(m):.2f}" for m in METRICS)
        lines.append(f"| {r.method} | {r.setting} | {r.domain} | {values} | {r.n} |")
    protocol = (
        "full ranking" if report.n_negatives is None else f"{report.n_negatives} sampled negatives"
    )
    lines += [
        "",
        f"{report.split} split, {protocol}, seed {report.seed}. Metrics in %.",
        "",
        "![NDCG@10 by method](ndcg10_by_method.png)",
        "",
    ]
    for setting in settings:
        lines.append(
            f"![NDCG@10 against history length, {setting}](ndcg10_by_history_{setting}.png)"
        )
        lines.append("")
    if report.slices:
        cells, table = slice_table(report)
        lines += [
            "## Where CF has little to go on",
            "",
            "NDCG@10 (%) on subsets of the cases: "
            + "; ".join(f"`{name}`: {what}" for name, what in SLICES.items())
            + ".",
            "",
            "| slice | method | " + " | ".join(cells) + " |",
            "|---|---|" + "---|" * len(cells),
        ]
        for (name, method), row_cells in table.items():
            lines.append(f"| {name} | {method} | " + " | ".join(row_cells) + " |")
        lines.append("")
    if report.comparisons:
        lines += [
            "## " + comparison_title(report.comparisons[0].baseline),
            "",
            "| method | setting | domain | difference | 95% interval | n |",
            "|---|---|---|---|---|---|",
        ]
        for c in report.comparisons:
            difference, interval = comparison_cells(c)
            lines.append(
                f"| {c.method} | {c.setting} | {c.domain} | {difference} | {interval.strip()} "
                f"| {c.n} |"
            )
        lines += ["", CLEAR_NOTE + ".", ""]
    path = directory / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
