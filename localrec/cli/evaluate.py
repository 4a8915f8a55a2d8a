"""Measuring and learning: `eval` and `tune`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from localrec.cli.common import MODEL, dataset_or_db, open_store, pack_path, say
from localrec.cli.output import format_json

__all__ = ["eval_cmd", "tune"]


class _CaseProgress:
    """Counts scored cases against a total that is known only once the scorers exist."""

    def __init__(self) -> None:
        from localrec.cli.output import Progress

        self.bar = Progress("evaluating", unit="cases")
        self.done = 0
        self.total = 0

    def __call__(self, n: int) -> None:
        self.done += n
        self.bar(self.done, max(self.total, self.done))


@click.command("eval")
@click.argument(
    "dataset_dir", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--model", "models", multiple=True, help="Model(s) to evaluate (default: all on disk)."
)
@click.option(
    "--setting",
    type=click.Choice(["mixed", "cross", "both"]),
    default="both",
    show_default=True,
    help="History of both domains, or only of the other domain.",
)
@click.option(
    "--negatives",
    type=click.IntRange(1),
    default=999,
    show_default=True,
    help="Sampled negatives per target.",
)
@click.option("--full", is_flag=True, help="Rank against the whole target domain instead.")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the negative draw.")
@click.option(
    "--split",
    type=click.Choice(["test", "valid"]),
    default="test",
    show_default=True,
    help="Which held-out split of a dataset.",
)
@click.option("--domain", help="With --db: only users whose last event is in this domain.")
@click.option("--no-adapter", is_flag=True, help="Leave out the tuned adapter's rows.")
@click.option(
    "--compare",
    metavar="METHOD",
    help="Also print every method's NDCG@10 minus METHOD's, paired, with a 95% interval.",
)
@click.option(
    "--pack",
    "pack_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Score every localrec row from this pack (as `recommend --pack` serves).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write a Markdown report with charts into this directory.",
)
@click.pass_context
def eval_cmd(
    ctx: click.Context,
    dataset_dir: Path | None,
    models: tuple[str, ...],
    setting: str,
    negatives: int,
    full: bool,
    seed: int,
    split: str,
    domain: str | None,
    no_adapter: bool,
    compare: str | None,
    pack_file: Path | None,
    as_json: bool,
    report_dir: Path | None,
) -> None:
    """Evaluate on a sequence dataset (DATASET_DIR) or on the database's own events.

    The target is each user's last item, ranked among NEGATIVES items of its domain drawn
    with numpy's default_rng(SEED) (or the whole domain with --full). Baselines (random,
    popularity, itemknn, itemknn-2hop, tfidf) and localrec's user representations run on
    the same candidates.
    """
    from localrec.cli.output import Progress
    from localrec.evaluation.report import format_results, report_dict, write_report
    from localrec.evaluation.runner import evaluate_database, evaluate_dataset

    dataset_or_db(ctx, dataset_dir)
    progress = _CaseProgress()
    options: dict[str, Any] = dict(
        models=list(models) or None,
        settings=("mixed", "cross") if setting == "both" else (setting,),
        n_negatives=negatives,
        seed=seed,
        full=full,
        split=split,
        encode_progress=Progress("encoding items"),
        progress=progress,
        adapters=not no_adapter,
        total=lambda n: setattr(progress, "total", n),
        compare=compare,
    )
    pack_file = pack_file or pack_path(ctx)
    if pack_file is not None:
        from localrec.packs.pack import open_pack

        options["pack"] = open_pack(pack_file)
    if dataset_dir is not None:
        report = evaluate_dataset(dataset_dir, **options)
    else:
        with open_store(ctx) as store:
            report = evaluate_database(store, domain, **options)
    if report_dir is not None:
        path = write_report(report, report_dir, "localrec " + " ".join(sys.argv[1:]))
        say(f"wrote {path}")
    if as_json:
        click.echo(format_json(report_dict(report)))
    else:
        click.echo(format_results(report))


@click.command()
@click.argument(
    "dataset_dir", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@MODEL
@click.option("--seed", type=int, default=0, show_default=True, help="Seed: same seed, same bytes.")
@click.option(
    "--epochs", type=click.IntRange(1, 100), help="Most epochs to train (best on valid kept)."
)
@click.option("--dim", type=click.IntRange(4, 512), help="Size of the learned space.")
@click.option(
    "--sample-users",
    type=int,
    metavar="N",
    help="Train and choose on a uniform sample of N training users, drawn with --seed.",
)
@click.pass_context
def tune(
    ctx: click.Context,
    dataset_dir: Path | None,
    model_name: str | None,
    seed: int,
    epochs: int | None,
    dim: int | None,
    sample_users: int | None,
) -> None:
    """Learn an adapter on the frozen vectors from DATASET_DIR's training files, or --db events.

    The best epoch on the validation split (a dataset's valid.txt, or each database user's
    last event) is kept, with the blend weights of its hybrid with item-kNN and item-kNN's
    two-step walk per domain. `recommend` and `eval` use it from then on; `eval
    --no-adapter` leaves it out.
    """
    from localrec.cli.output import Progress
    from localrec.scoring.adapter import AdapterConfig
    from localrec.tuning.run import tune_database, tune_dataset, tune_summary

    default = AdapterConfig()
    config = AdapterConfig(
        seed=seed,
        epochs=default.epochs if epochs is None else epochs,
        dim=default.dim if dim is None else dim,
    )

    def on_epoch(domain: str, epoch: int, mean: float, ndcg: dict[str, float]) -> None:
        parts = ", ".join(f"{k} {100 * v:.2f}" for k, v in ndcg.items())
        say(f"{domain} epoch {epoch}: valid NDCG@10 {parts} (%)")

    dataset_or_db(ctx, dataset_dir)
    bar = Progress("training", unit="batches")
    encoding = Progress("encoding items")
    if dataset_dir is not None:
        adapter = tune_dataset(
            dataset_dir,
            model_name,
            config,
            on_epoch=on_epoch,
            on_batch=bar,
            encode_progress=encoding,
            sample_users=sample_users,
        )
    else:
        with open_store(ctx) as store:
            adapter = tune_database(
                store,
                model_name,
                config,
                on_epoch=on_epoch,
                on_batch=bar,
                encode_progress=encoding,
                sample_users=sample_users,
            )
    for line in tune_summary(adapter):
        click.echo(line)
