"""What every command module shares: the error-reporting group, the database path,
stderr messages and the options several commands take."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from localrec.errors import LocalrecError

if TYPE_CHECKING:
    from localrec.recommend.recommender import Recommender
    from localrec.store.db import Store

__all__ = [
    "MODEL",
    "USER_VECTOR",
    "LocalrecGroup",
    "check_output_dir",
    "dataset_or_db",
    "db_path",
    "domains",
    "open_recommender",
    "open_store",
    "pack_items",
    "pack_model",
    "pack_path",
    "say",
]


class LocalrecGroup(click.Group):
    """A group that turns every `LocalrecError` into a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LocalrecError as exc:
            raise click.ClickException(str(exc)) from None
        except UnicodeEncodeError as exc:
            # Arguments that are not UTF-8 arrive as lone surrogates (surrogateescape).
            bad = exc.object[exc.start : exc.end] if isinstance(exc.object, str) else "?"
            raise click.ClickException(
                f"{bad!r} in {exc.object[:60]!r} is not valid UTF-8 text"
            ) from None


def say(message: str) -> None:
    """A message for the person at the terminal: stderr, so stdout stays data."""
    click.echo(message, err=True)


def db_path(ctx: click.Context) -> Path:
    """--db, else the default database under $LOCALREC_HOME."""
    from localrec.paths import default_db_path

    return Path(ctx.obj.get("db_path") or default_db_path())


def open_store(ctx: click.Context) -> Store:
    """The existing database (a missing one is an error naming the path)."""
    from localrec.store.db import Store

    return Store(db_path(ctx), create=False)


def pack_path(ctx: click.Context) -> Path | None:
    """--pack (or $LOCALREC_PACK), if given."""
    path = ctx.obj.get("pack_path")
    return Path(path) if path is not None else None


def pack_items(ctx: click.Context) -> dict[str, int] | None:
    """The item ids of --pack's catalogue (events may name them), or None without a pack."""
    path = pack_path(ctx)
    if path is None:
        return None
    from localrec.packs.pack import open_pack

    with open_pack(path) as pack:
        return pack.index


def pack_model(ctx: click.Context) -> str | None:
    """The model --pack was built with (items added beside it are encoded with it); this
    machine's file of it must be the one the pack was built with."""
    path = pack_path(ctx)
    if path is None:
        return None
    from localrec.packs.pack import open_pack, require_pack_model

    with open_pack(path) as pack:
        require_pack_model(pack)
        return pack.model


def open_recommender(ctx: click.Context, model_name: str | None, **options: Any) -> Recommender:
    """A Recommender over --db, or over --pack with --db as the private database."""
    from localrec.recommend.recommender import Recommender

    return Recommender(
        db_path(ctx), model_name, pack=pack_path(ctx), verbose=ctx.obj["verbose"], **options
    )


def dataset_or_db(ctx: click.Context, dataset_dir: Path | None) -> None:
    if dataset_dir is not None and ctx.obj.get("db_path") is not None:
        raise click.UsageError(
            f"give DATASET_DIR ({dataset_dir}) or --db ({ctx.obj['db_path']}), not both"
        )


def check_output_dir(path: Path, option: str) -> None:
    """Fail before the work, not after it, when an output file's directory is missing."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise click.BadParameter(
            f"{path}: the directory {parent} does not exist; create it first",
            param_hint=option,
        )


def domains(value: str | None) -> list[str] | None:
    """A comma-separated --from value as a list of domains."""
    return [d.strip() for d in value.split(",") if d.strip()] if value else None


USER_VECTOR = click.option(
    "--user-vector",
    type=click.Choice(["hybrid", "zero-shot", "history-text", "item-mean", "max-sim"]),
    help=(
        "How the user is scored (default: hybrid, the tuned hybrid where `tune` kept an "
        "adapter, else zero-shot)."
    ),
)
MODEL = click.option("--model", "model_name", help="Model whose vectors to use (default model).")
