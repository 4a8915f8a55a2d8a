"""The database's contents: `add`, `delete`, `encode`, `stats`, `config` and `forget`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from localrec.cli.common import (
    LocalrecGroup,
    db_path,
    open_recommender,
    open_store,
    pack_items,
    pack_model,
    pack_path,
    say,
)
from localrec.cli.output import format_json

if TYPE_CHECKING:
    from localrec.store.ingest import IngestReport

__all__ = ["add", "config", "delete", "encode", "forget", "stats"]


def _report_ingest(report: IngestReport, what: str) -> None:
    click.echo(f"stored {report.stored} {what} from {report.source}")
    if not report.stored and not report.skipped:
        say(f"{report.source} has no rows")
    if report.skipped:
        say(f"skipped {report.skipped_count} invalid row(s):")
        for line, reason in report.skipped[:20]:
            say(f"  line {line}: {reason}")
        if report.skipped_count > 20:
            say(f"  … and {report.skipped_count - 20} more")
    for note in report.notes:
        say(note)


_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "tsv", "jsonl", "json"]),
    help="File format (default: from the extension).",
)
_SKIP = click.option(
    "--skip-invalid", is_flag=True, help="Store the good rows and report the bad ones."
)
# "-" reads stdin (with --format, since stdin has no extension).
_FILE = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)


@click.group(cls=LocalrecGroup)
def add() -> None:
    """Add catalogue items or user events from a file."""


@add.command("items")
@_FILE
@_FORMAT
@click.option("--id", "id_col", default="id", show_default=True, help="Column with the item id.")
@click.option(
    "--domain", "domain_col", default="domain", show_default=True, help="Column with the domain."
)
@click.option("--set-domain", help="Put every item of the file in this domain.")
@click.option(
    "--text",
    "text_cols",
    multiple=True,
    help="Text column(s); the first is the title. [default: title]",
)
@_SKIP
@click.pass_context
def add_items_cmd(
    ctx: click.Context,
    file: Path,
    fmt: str | None,
    id_col: str,
    domain_col: str,
    set_domain: str | None,
    text_cols: tuple[str, ...],
    skip_invalid: bool,
) -> None:
    """Insert or update items from FILE (CSV, TSV, JSON Lines or a JSON array; - reads
    stdin, with --format).

    Columns that are neither the id, the domain nor a --text column are stored but not
    embedded unless the domain's template names them; a note on stderr names them.
    """
    from localrec.store.db import open_for_write
    from localrec.store.ingest import ItemColumns, add_items_file

    columns = ItemColumns(
        id=id_col,
        domain=None if set_domain else domain_col,
        set_domain=set_domain,
        text=text_cols or ("title",),
    )
    taken = pack_items(ctx)  # before the database: a missing pack creates nothing
    with open_for_write(db_path(ctx)) as store:
        report = add_items_file(
            store, file, columns, fmt=fmt, skip_invalid=skip_invalid, taken=taken
        )
    _report_ingest(report, "items")


@add.command("events")
@_FILE
@_FORMAT
@click.option(
    "--user", "user_col", default="user", show_default=True, help="Column with the user id."
)
@click.option(
    "--item", "item_col", default="item", show_default=True, help="Column with the item id."
)
@click.option(
    "--action", "action_col", default="action", show_default=True, help="Column with the action."
)
@click.option("--set-action", help="Give every event this action (purchase, rate, view, …).")
@click.option(
    "--time",
    "time_col",
    default="time",
    show_default=True,
    help="Column with the time (Unix seconds or ISO 8601); an event without one gets "
    "the time it is added.",
)
@click.option(
    "--value",
    "value_col",
    default="value",
    show_default=True,
    help="Column with a rating or weight.",
)
@click.option(
    "--review", "review_col", default="review", show_default=True, help="Column with review text."
)
@_SKIP
@click.pass_context
def add_events_cmd(
    ctx: click.Context,
    file: Path,
    fmt: str | None,
    user_col: str,
    item_col: str,
    action_col: str,
    set_action: str | None,
    time_col: str,
    value_col: str,
    review_col: str,
    skip_invalid: bool,
) -> None:
    """Append user events from FILE (- reads stdin, with --format); every item must
    already be in the catalogue.

    An event without a time is dated now: after the user's earlier events, in file order.
    An option naming a column the file does not have is an error. An action word localrec
    has no weight for (say "read") counts 0.5, against 1.0 for purchase: a note says so,
    and `localrec config set action.read 0.8` gives it a weight of its own.
    """
    from localrec.store.db import open_for_write
    from localrec.store.ingest import EventColumns, add_events_file

    columns = EventColumns(
        user=user_col,
        item=item_col,
        action=action_col,
        set_action=set_action,
        value=value_col,
        time=time_col,
        review=review_col,
    )
    with open_for_write(db_path(ctx)) as store:
        report = add_events_file(
            store, file, columns, fmt=fmt, skip_invalid=skip_invalid, known_items=pack_items(ctx)
        )
    _report_ingest(report, "events")


@click.group(cls=LocalrecGroup)
def delete() -> None:
    """Delete catalogue items."""


@delete.command("items")
@click.argument("ids", nargs=-1, required=True)
@click.pass_context
def delete_items_cmd(ctx: click.Context, ids: tuple[str, ...]) -> None:
    """Delete items IDS with their events and vectors."""
    with open_store(ctx) as store:
        report = store.delete_items(ids)
    click.echo(f"deleted {report.deleted} of {len(ids)} item(s)")
    if report.unknown:
        say(f"not in the catalogue: {', '.join(map(repr, report.unknown[:20]))}")


@click.command()
@click.option("--model", "model_name", help="Model name (default: the registry's default).")
@click.option("--domain", help="Only this domain.")
@click.option("--force", is_flag=True, help="Encode everything again.")
@click.option(
    "--chunk-size",
    default=256,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Items per committed chunk.",
)
@click.pass_context
def encode(
    ctx: click.Context, model_name: str | None, domain: str | None, force: bool, chunk_size: int
) -> None:
    """Embed every item whose text changed since it was last encoded with the model."""
    from localrec.cli.output import Progress
    from localrec.embedding.loader import open_encoder
    from localrec.store.item_vectors import encode_items

    with (
        open_store(ctx) as store,
        open_encoder(_encode_model(ctx, model_name), verbose=ctx.obj["verbose"]) as encoder,
    ):
        report = encode_items(
            store,
            encoder,
            chunk_size=chunk_size,
            force=force,
            domain=domain,
            progress=Progress(f"encoding with {encoder.name}"),
        )
    click.echo(
        f"encoded {report.encoded} item(s), skipped {report.skipped} unchanged "
        f"({report.items_per_second:.0f} items/s, {report.seconds:.1f} s, model {report.model})"
    )
    if report.truncated:
        say(
            f"{report.truncated} item text(s) were longer than the model's limit and were truncated"
        )


def _encode_model(ctx: click.Context, model_name: str | None) -> str | None:
    """--model, or with --pack the pack's model (items beside a pack must match it)."""
    packed = pack_model(ctx)
    if packed is not None and model_name not in (None, packed):
        raise click.UsageError(
            f"--pack was built with {packed!r}; items beside it are encoded with that model, "
            f"not {model_name!r}"
        )
    return packed or model_name


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts of items per domain, users, events and vectors per model (and how many of
    them are stale: their item or template changed since `encode`); with --pack, the
    pack's too, and the events whose items left its catalogue (kept, but skipped)."""
    if pack_path(ctx) is not None:
        with open_recommender(ctx, None) as rec:
            data = rec.stats()
    else:
        from localrec.store.item_vectors import database_stats

        with open_store(ctx) as store:
            data = database_stats(store)
    if as_json:
        click.echo(format_json(data))
        return
    click.echo(f"database  {data['path']} (schema {data['schema_version']})")
    click.echo(f"items     {data['items_total']}")
    for domain, n in data["items"].items():
        click.echo(f"  {domain:<20} {n}")
    click.echo(f"users     {data['users']}")
    click.echo(f"events    {data['events']}")
    if "pack" in data:
        click.echo(f"  of items not in the catalogue (skipped) {data['events_skipped']}")
    click.echo("vectors")
    for model, n in data["vectors"].items():
        stale = data["stale_vectors"].get(model, 0)
        said = f" ({stale} stale: their text changed; run `localrec encode`)" if stale else ""
        click.echo(f"  {model:<20} {n}{said}")
    if "pack" in data:
        pack = data["pack"]
        click.echo(f"pack      {pack['path']} (model {pack['model']}, K = {pack['min_users']})")
        for domain, n in pack["items"].items():
            click.echo(f"  {domain:<20} {n}")


@click.group(cls=LocalrecGroup)
def config() -> None:
    """Settings stored in the database: item templates (template.DOMAIN) and action
    weights (action.WORD)."""


@config.command("set")
@click.argument("key")
@click.argument("value")
@click.pass_context
def config_set(ctx: click.Context, key: str, value: str) -> None:
    """Set KEY to VALUE, e.g. template.music "{title} by {artist}" or action.read 0.8.

    A template's domain must be in the database, and each field it names must be a field
    of its items; `localrec encode` then embeds the domain's items again.
    """
    from localrec.store.config import set_config
    from localrec.store.db import open_for_write

    with open_for_write(db_path(ctx)) as store:
        notes = set_config(store, key, value)
    click.echo(f"{key} = {value}")
    for note in notes:
        say(note)


@config.command("get")
@click.argument("key")
@click.pass_context
def config_get(ctx: click.Context, key: str) -> None:
    """Print the value of KEY."""
    with open_store(ctx) as store:
        value = store.config_get(key)
    if value is None:
        raise click.ClickException(f"{key} is not set")
    click.echo(value)


@config.command("list")
@click.pass_context
def config_list(ctx: click.Context) -> None:
    """Print every setting."""
    with open_store(ctx) as store:
        for key, value in store.config_items().items():
            click.echo(f"{key} = {value}")


@config.command("unset")
@click.argument("key")
@click.pass_context
def config_unset(ctx: click.Context, key: str) -> None:
    """Remove KEY."""
    with open_store(ctx) as store:
        removed = store.config_unset(key)
    click.echo(f"{key} removed" if removed else f"{key} was not set")


@click.command()
@click.argument("user")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--retrain",
    is_flag=True,
    help="Tune each stored adapter again without USER's events (as long as `tune` takes).",
)
@click.pass_context
def forget(ctx: click.Context, user: str, yes: bool, retrain: bool) -> None:
    """Delete every event and vector of USER, then VACUUM so the bytes are gone.

    Exits with 3 when the database holds nothing of USER. A tuned adapter trained on
    USER's events keeps what it learned until `tune` runs again: --retrain does that.
    """
    from localrec.cli.exit_codes import UNKNOWN_USER
    from localrec.recommend.forget import forget_user

    if not yes:
        click.confirm(f"Delete all data of user {user!r}?", abort=True)
    with open_store(ctx) as store:
        report = forget_user(
            store,
            user,
            retrain=retrain,
            on_retrain=lambda model: say(f"tuning the {model} adapter again without {user!r}"),
        )
    if not report.found:
        say(f"the database holds nothing of user {user!r}; nothing was deleted")
        ctx.exit(UNKNOWN_USER)
    click.echo(f"deleted {report.rows} row(s) of user {user!r} and vacuumed the database")
    for model in report.retrained:
        click.echo(f"tuned the {model} adapter again without {user!r}")
    for note in report.notes():
        say(f"note: {note}")
