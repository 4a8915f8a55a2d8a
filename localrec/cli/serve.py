"""`localrec serve`: the local HTTP API and its playground page (the `[serve]` extra)."""

from __future__ import annotations

from pathlib import Path

import click

from localrec.cli.common import MODEL, db_path, pack_path, say

__all__ = ["serve"]


def _one(ctx: click.Context, name: str, here: Path | None, there: Path | None) -> Path | None:
    """--db/--pack given to `serve` or to `localrec` itself (or its environment variable)."""
    if here is not None and there is not None and here != there:
        raise click.UsageError(f"--{name} is given twice ({there} and {here}); give it once")
    return here if here is not None else there


@click.command()
@click.option(
    "--db",
    "db_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The database (with --pack: this device's private one); as `localrec --db`.",
)
@click.option(
    "--pack",
    "pack_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A pack to recommend from; as `localrec --pack`.",
)
@MODEL
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to bind to.")
@click.option(
    "--port", type=int, default=8765, show_default=True, help="The port (0: any free one)."
)
@click.option(
    "--token",
    envvar="LOCALREC_SERVE_TOKEN",
    help="The bearer token writes (and, off loopback, every request) need; default: one "
    "generated once into $LOCALREC_HOME/serve/token (mode 0600). $LOCALREC_SERVE_TOKEN keeps "
    "it out of the process list.",
)
@click.option(
    "--cors",
    multiple=True,
    help="A web origin allowed to call the API from a browser, e.g. http://localhost:3000 "
    "(repeatable; none by default).",
)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Server processes, each with its own copy of the model and pack: with several, "
    "concurrent requests use several cores (about one per core).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    db_file: Path | None,
    pack_file: Path | None,
    model_name: str | None,
    host: str,
    port: int,
    token: str | None,
    cors: tuple[str, ...],
    workers: int,
) -> None:
    """Serve recommendations over HTTP on this machine (loopback by default).

    JSON endpoints under /v1 (recommend, score, similar, events, forget, stats, health),
    the OpenAPI schema at /openapi.json and a playground page at /. Stops on Ctrl-C or
    SIGTERM after the requests in flight.
    """
    from localrec import __version__
    from localrec.serve.server import ServeSettings
    from localrec.serve.workers import open_server

    db = _one(ctx, "db", db_file, ctx.obj.get("db_path")) or db_path(ctx)
    pack = _one(ctx, "pack", pack_file, pack_path(ctx))
    settings = ServeSettings(
        db=db,
        pack=pack,
        model=model_name,
        host=host,
        port=port,
        token=token,
        cors=cors,
        verbose=ctx.obj["verbose"],
        version=__version__,
    )
    server = open_server(settings, workers)
    say(f"localrec serve: {server.url}  (playground; API under /v1, schema at /openapi.json)")
    say(
        f"serving {pack or db}"
        + (f" with the private database {db}" if pack else "")
        + (f" in {workers} worker processes" if workers > 1 else "")
    )
    who = "writes need" if server.loopback else "every request needs"
    where = f"the token in {server.token_file}" if server.token_file else "the --token"
    say(f"{who} `Authorization: Bearer TOKEN`, {where}; Ctrl-C stops")
    server.run()
