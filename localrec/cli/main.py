"""The `localrec` command: the root group and its global options. Each command group
lives in its own module (models, data, recommend, evaluate); a command parses its
arguments, calls one library function and formats the answer. Heavy imports (numpy, the
library) happen inside the commands, so `localrec --help` stays fast."""

from __future__ import annotations

from pathlib import Path

import click

from localrec.cli import data, evaluate, models, packs, recommend, serve
from localrec.cli.common import LocalrecGroup

__all__ = ["cli"]


@click.group(cls=LocalrecGroup)
# The version of the installed distribution (importlib.metadata), read only when asked.
@click.version_option(package_name="localrec", prog_name="localrec")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="LOCALREC_DB",
    help="The database file (default: $LOCALREC_DB, else localrec.db under $LOCALREC_HOME).",
)
@click.option(
    "--pack",
    "pack_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="LOCALREC_PACK",
    help=(
        "A pack (`localrec pack build`) to recommend from; --db is then this device's private "
        "database of its own events (default: $LOCALREC_PACK)."
    ),
)
@click.option("--verbose", is_flag=True, help="Show llama.cpp's own log on stderr.")
@click.pass_context
def cli(ctx: click.Context, db_path: Path | None, pack_path: Path | None, verbose: bool) -> None:
    """Private, offline recommendations with small GGUF embedding models."""
    ctx.ensure_object(dict)
    ctx.obj["db_path"] = db_path
    ctx.obj["pack_path"] = pack_path
    ctx.obj["verbose"] = verbose


for command in (
    models.models,
    models.embed,
    data.add,
    data.delete,
    data.encode,
    data.stats,
    data.config,
    data.forget,
    recommend.recommend,
    recommend.score,
    recommend.similar,
    recommend.threshold,
    evaluate.eval_cmd,
    evaluate.tune,
    packs.pack,
    serve.serve,
):
    cli.add_command(command)
