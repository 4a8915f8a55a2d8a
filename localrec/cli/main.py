"""The `localrec` command: parse arguments, call one library function, format the answer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from localrec import __version__
from localrec.cli.output import format_json, format_table, human_size

if TYPE_CHECKING:
    from localrec.recommend.recommender import UserVector
from localrec.errors import LocalrecError


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


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.group(cls=LocalrecGroup)
@click.version_option(__version__, prog_name="localrec")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="LOCALREC_DB",
    help="The database file (default: $LOCALREC_DB, else localrec.db under $LOCALREC_HOME).",
)
@click.option("--verbose", is_flag=True, help="Show llama.cpp's own log on stderr.")
@click.pass_context
def cli(ctx: click.Context, db_path: Path | None, verbose: bool) -> None:
    """Private, offline recommendations with small GGUF embedding models."""
    ctx.ensure_object(dict)
    ctx.obj["db_path"] = db_path
    ctx.obj["verbose"] = verbose


# -- models ------------------------------------------------------------------------------


@cli.group(cls=LocalrecGroup)
def models() -> None:
    """List, pull, add, inspect and convert embedding models."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_list(as_json: bool) -> None:
    """Show the registered models and which are on disk."""
    from localrec.models.cache import list_models
    from localrec.models.registry import load_registry

    registry = load_registry()
    rows: list[dict[str, Any]] = [
        {
            "name": row.spec.name,
            "dim": row.spec.dim,
            "default": row.spec.name == registry.default,
            "path": str(row.path) if row.path else None,
            "size": row.size,
            "source": row.source,
            "pooling": row.spec.pooling,
            "max_tokens": row.spec.max_tokens,
            "languages": list(row.spec.languages),
            "license": row.spec.license,
            "repo": row.spec.repo,
            "download_size": row.spec.size,
        }
        for row in list_models(registry)
    ]
    if as_json:
        click.echo(format_json(rows))
        return
    for row in rows:
        row["on disk"] = human_size(row["size"]) if row["path"] else "no"
        row["name"] = f"{row['name']} *" if row["default"] else row["name"]
        row["download"] = human_size(row["download_size"])
    click.echo(
        format_table(
            rows, ["name", "dim", "pooling", "max_tokens", "languages", "download", "on disk"]
        )
    )
    click.echo("\n* the default model")


@models.command("pull")
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="Fetch again even if the file is on disk.")
def models_pull(name: str | None, force: bool) -> None:
    """Download a registered model (the default when NAME is omitted).

    The file is checked against the registry's sha256. When the hub cannot be reached,
    a model with an offline source is built from its installed package instead.
    """
    from localrec.models.cache import pull_model

    result = pull_model(name, force=force, step=_say)
    click.echo(result.message)


@models.command("add")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Name to register it under (default: from the file name).")
@click.option(
    "--max-tokens", type=click.IntRange(8, 1 << 20), help="Truncate texts to this many tokens."
)
def models_add(path: Path, name: str | None, max_tokens: int | None) -> None:
    """Register a GGUF embedding model you already have."""
    from localrec.models.cache import add_model

    spec = add_model(path, name=name, max_tokens=max_tokens)
    click.echo(
        f"added {spec.name}: {spec.dim} dims, {spec.pooling} pooling, from {spec.local_path}"
    )


@models.command("info")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_info(name: str | None, as_json: bool) -> None:
    """Show the GGUF metadata of a model on disk."""
    from localrec.embedding.f16_twin import runtime_summary
    from localrec.models.cache import model_info

    gguf = model_info(name)
    info = {**gguf.to_dict(), "runs_as": runtime_summary(gguf.path)}
    if as_json:
        click.echo(format_json(info))
        return
    width = max(map(len, info))
    for key, value in info.items():
        click.echo(f"{key.ljust(width)}  {value}")


@models.command("convert")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--type",
    "quant",
    type=click.Choice(["f16", "q8_0"]),
    default="q8_0",
    show_default=True,
    help="Weight type of the GGUF.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Output file.")
def models_convert(directory: Path, quant: str, out: Path | None) -> None:
    """Convert a sentence-transformers BERT checkpoint directory into a GGUF."""
    from localrec.models.convert import convert_checkpoint

    out = out or Path(f"{directory.resolve().name}-{quant}.gguf")
    info = convert_checkpoint(directory, out, quant, on_step=_say)
    click.echo(
        f"wrote {out} ({human_size(info.file_size)}, {info.architecture}, "
        f"{info.embedding_length} dims, {info.pooling} pooling)"
    )


# -- embed -------------------------------------------------------------------------------


@cli.command()
@click.argument("texts", nargs=-1)
@click.option("--model", "model_name", help="Model name (default: the registry's default).")
@click.option(
    "--query", is_flag=True, help="Apply the model's query prefix instead of the document one."
)
@click.option(
    "--file", "text_file", type=click.File("r", encoding="utf-8"), help="Read one text per line."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of vectors.")
@click.option(
    "--npy",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the vectors to a .npy file.",
)
@click.pass_context
def embed(
    ctx: click.Context,
    texts: tuple[str, ...],
    model_name: str | None,
    query: bool,
    text_file: Any,
    as_json: bool,
    npy: Path | None,
) -> None:
    """Embed TEXTS (or one text per line of --file or stdin) and print the vectors."""
    from localrec.embedding.embed_texts import embed_texts, save_npy

    if npy is not None:
        _check_output_dir(npy, "--npy")
    lines = list(texts)
    if text_file is not None:
        try:
            lines.extend(line.rstrip("\n") for line in text_file)
        except UnicodeDecodeError as exc:
            raise click.ClickException(
                f"{text_file.name}: not UTF-8 text (byte {exc.start}: {exc.reason}); "
                "save it as UTF-8"
            ) from None
    if not lines:
        if sys.stdin.isatty():
            raise click.UsageError("give TEXT arguments, --file FILE, or texts on stdin")
        lines = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    result = embed_texts(lines, model=model_name, query=query, verbose=ctx.obj["verbose"])
    if npy is not None:
        save_npy(npy, result.vectors)
        _say(f"wrote {len(lines)} x {result.vectors.shape[1]} vectors to {npy}")
    if as_json:
        click.echo(format_json(result.vectors.tolist()))
    elif npy is None:
        rows = [
            {
                "text": text,
                "dim": len(vec),
                "norm": float(sum(v * v for v in vec) ** 0.5),
                "first values": ", ".join(f"{v:+.4f}" for v in vec[:4]),
            }
            for text, vec in zip(lines, result.vectors.tolist(), strict=True)
        ]
        click.echo(format_table(rows, ["text", "dim", "norm", "first values"]))
    if result.truncated:
        _say(
            f"{result.truncated} text(s) were longer than {result.max_tokens} tokens "
            "and were truncated"
        )


def _dataset_or_db(ctx: click.Context, dataset_dir: Path | None) -> None:
    if dataset_dir is not None and ctx.obj.get("db_path") is not None:
        raise click.UsageError(
            f"give DATASET_DIR ({dataset_dir}) or --db ({ctx.obj['db_path']}), not both"
        )


def _check_output_dir(path: Path, option: str) -> None:
    """Fail before the work, not after it, when an output file's directory is missing."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise click.BadParameter(
            f"{path}: the directory {parent} does not exist; create it first",
            param_hint=option,
        )


# -- data --------------------------------------------------------------------------------


def _db_path(ctx: click.Context) -> Path:
    """--db, else the default database under $LOCALREC_HOME."""
    from localrec.paths import default_db_path

    return Path(ctx.obj.get("db_path") or default_db_path())


def _open_store(ctx: click.Context) -> Any:
    """The existing database (a missing one is an error naming the path)."""
    from localrec.store.db import Store

    return Store(_db_path(ctx), create=False)


def _store_to_write(ctx: click.Context) -> Any:
    """The database, created if missing (and removed again if this command fails)."""
    from localrec.store.db import open_for_write

    return open_for_write(_db_path(ctx))


def _report_ingest(report: Any, what: str) -> None:
    click.echo(f"stored {report.stored} {what} from {report.source}")
    if not report.stored and not report.skipped:
        _say(f"{report.source} has no rows")
    if report.skipped:
        _say(f"skipped {report.skipped_count} invalid row(s):")
        for line, reason in report.skipped[:20]:
            _say(f"  line {line}: {reason}")
        if report.skipped_count > 20:
            _say(f"  … and {report.skipped_count - 20} more")


_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "tsv", "jsonl", "json"]),
    help="File format (default: from the extension).",
)
_SKIP = click.option(
    "--skip-invalid", is_flag=True, help="Store the good rows and report the bad ones."
)


@cli.group(cls=LocalrecGroup)
def add() -> None:
    """Add catalogue items or user events from a file."""


@add.command("items")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
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
    """Insert or update items from FILE (CSV, TSV, JSON Lines or a JSON array)."""
    from localrec.store.ingest import ItemColumns, add_items_file

    columns = ItemColumns(
        id=id_col,
        domain=None if set_domain else domain_col,
        set_domain=set_domain,
        text=text_cols or ("title",),
    )
    with _store_to_write(ctx) as store:
        report = add_items_file(store, file, columns, fmt=fmt, skip_invalid=skip_invalid)
    _report_ingest(report, "items")


@add.command("events")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
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
@click.option("--time", "time_col", default="time", show_default=True, help="Column with the time.")
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
    """Append user events from FILE; every item must already be in the catalogue."""
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
    with _store_to_write(ctx) as store:
        report = add_events_file(store, file, columns, fmt=fmt, skip_invalid=skip_invalid)
    _report_ingest(report, "events")


@cli.group(cls=LocalrecGroup)
def delete() -> None:
    """Delete catalogue items."""


@delete.command("items")
@click.argument("ids", nargs=-1, required=True)
@click.pass_context
def delete_items_cmd(ctx: click.Context, ids: tuple[str, ...]) -> None:
    """Delete items IDS with their events and vectors."""
    with _open_store(ctx) as store:
        report = store.delete_items(ids)
    click.echo(f"deleted {report.deleted} of {len(ids)} item(s)")
    if report.unknown:
        _say(f"not in the catalogue: {', '.join(map(repr, report.unknown[:20]))}")


@cli.command()
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
    from localrec.embedding.llama_encoder import open_encoder
    from localrec.store.item_vectors import encode_items

    with (
        _open_store(ctx) as store,
        open_encoder(model_name, verbose=ctx.obj["verbose"]) as encoder,
    ):
        if domain is not None:
            store.require_domain(domain)
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
        _say(
            f"{report.truncated} item text(s) were longer than the model's limit and were truncated"
        )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts of items per domain, users, events and vectors per model."""
    with _open_store(ctx) as store:
        data = store.stats()
    if as_json:
        click.echo(format_json(data))
        return
    click.echo(f"database  {data['path']} (schema {data['schema_version']})")
    click.echo(f"items     {data['items_total']}")
    for domain, n in data["items"].items():
        click.echo(f"  {domain:<20} {n}")
    click.echo(f"users     {data['users']}")
    click.echo(f"events    {data['events']}")
    click.echo("vectors")
    for model, n in data["vectors"].items():
        click.echo(f"  {model:<20} {n}")


@cli.group(cls=LocalrecGroup)
def config() -> None:
    """Settings stored in the database, such as item templates (template.DOMAIN)."""


@config.command("set")
@click.argument("key")
@click.argument("value")
@click.pass_context
def config_set(ctx: click.Context, key: str, value: str) -> None:
    """Set KEY to VALUE, e.g. template.music "{title} by {artist}"."""
    from localrec.store.config import set_setting

    with _store_to_write(ctx) as store:
        set_setting(store, key, value)
    click.echo(f"{key} = {value}")


@config.command("get")
@click.argument("key")
@click.pass_context
def config_get(ctx: click.Context, key: str) -> None:
    """Print the value of KEY."""
    with _open_store(ctx) as store:
        value = store.config_get(key)
    if value is None:
        raise click.ClickException(f"{key} is not set")
    click.echo(value)


@config.command("list")
@click.pass_context
def config_list(ctx: click.Context) -> None:
    """Print every setting."""
    with _open_store(ctx) as store:
        for key, value in store.config_items().items():
            click.echo(f"{key} = {value}")


@config.command("unset")
@click.argument("key")
@click.pass_context
def config_unset(ctx: click.Context, key: str) -> None:
    """Remove KEY."""
    with _open_store(ctx) as store:
        removed = store.config_unset(key)
    click.echo(f"{key} removed" if removed else f"{key} was not set")


# -- recommendations ---------------------------------------------------------------------

_USER_VECTOR = click.option(
    "--user-vector",
    type=click.Choice(["hybrid", "history-text", "item-mean", "max-sim"]),
    help="How the user becomes a vector (default: hybrid).",
)
_MODEL = click.option("--model", "model_name", help="Model whose vectors to use (default model).")


def _domains(value: str | None) -> list[str] | None:
    return [d.strip() for d in value.split(",") if d.strip()] if value else None


def _per_setting(weights: dict[str, float]) -> str:
    return ", ".join(f"{setting} {weight:g}" for setting, weight in weights.items())


def _one_format(as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")


def _because(detail: dict[str, Any]) -> str:
    """One reason, short enough for a table cell: text similarity, or a CF share."""
    from localrec.recommend.results import SIMILAR_TEXT

    said = f"{detail['action']} {detail['title'][:40]}"
    if detail["reason"] == SIMILAR_TEXT:
        return f"{said} ({detail['similarity']:.2f})"
    return f"{said} ({detail['reason']}: {detail['similarity']:.0%})"


def _print_recommendations(items: list[Any], as_json: bool, as_csv: bool, explain: bool) -> None:
    from localrec.cli.output import format_csv

    rows = [item.to_dict() for item in items]
    if as_json:
        click.echo(format_json(rows))
        return
    columns = ["item_id", "domain", "score", "title"]
    if as_csv:
        click.echo(format_csv(rows, [*columns, "because"] if explain else columns))
        return
    for rank, row in enumerate(rows, start=1):
        row["#"] = rank
        row["because you"] = [_because(d) for d in row["because_detail"]]
    click.echo(
        format_table(
            rows,
            ["#", "item_id", "score", "title", *(["because you"] if explain else [])],
            max_width=70 if explain else 80,
        )
    )


@cli.command()
@click.argument("user", required=False)
@click.option("--domain", required=True, help="The domain to recommend from.")
@click.option(
    "--history", help='An ad-hoc user, stored nowhere: "bought a phone; rated a laptop 5/5".'
)
@click.option(
    "-k", "k", type=int, help="How many items (default 10; all of R(u) with --threshold)."
)
@click.option(
    "--threshold",
    type=float,
    help="Only items with cosine s(u,p) >= THRESHOLD (ranked by zero-shot text, even after tune).",
)
@click.option(
    "--from", "from_domains", help="Use only history from these domains (comma-separated)."
)
@_USER_VECTOR
@_MODEL
@click.option("--explain", is_flag=True, help="Name the history items behind each recommendation.")
@click.option("--include-seen", is_flag=True, help="Keep items the user already has.")
@click.option("--no-fallback", is_flag=True, help="No popular items for a user without history.")
@click.option(
    "--lang",
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="Language of the history text.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.pass_context
def recommend(
    ctx: click.Context,
    user: str | None,
    domain: str,
    history: str | None,
    k: int | None,
    threshold: float | None,
    from_domains: str | None,
    user_vector: UserVector | None,
    model_name: str | None,
    explain: bool,
    include_seen: bool,
    no_fallback: bool,
    lang: str,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Recommend DOMAIN items for USER (or for an ad-hoc --history)."""
    from localrec.recommend.recommender import Recommender

    if (user is None) == (history is None):
        raise click.UsageError("give a USER or --history TEXT (one of them)")
    _one_format(as_json, as_csv)
    if k is not None and k <= 0:
        raise click.BadParameter(f"{k} is not a positive number of items", param_hint="-k")
    if threshold is not None and not -1 <= threshold <= 1:
        raise click.BadParameter(
            f"{threshold} is not a cosine in [-1, 1]", param_hint="--threshold"
        )
    db = _db_path(ctx)
    with Recommender(
        db, model_name, user_vector=user_vector or "hybrid", lang=lang, verbose=ctx.obj["verbose"]
    ) as rec:
        result = rec.recommend(
            user,
            domain=domain,
            history=history,
            k=k,
            threshold=threshold,
            from_domains=_domains(from_domains),
            explain=explain,
            include_seen=include_seen,
            fallback=not no_fallback,
        )
    if no_fallback and not result.history_size:
        raise click.ClickException(f"no recommendations: {result.notes[0]}")
    for note in result.notes:
        _say(note)
    _print_recommendations(result.items, as_json, as_csv, explain)


@cli.command()
@click.argument("user")
@click.argument("items", nargs=-1, required=True)
@click.option("--from", "from_domains", help="Use only history from these domains.")
@_USER_VECTOR
@_MODEL
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.pass_context
def score(
    ctx: click.Context,
    user: str,
    items: tuple[str, ...],
    from_domains: str | None,
    user_vector: UserVector | None,
    model_name: str | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Print s(USER, ITEM) for each ITEM: the cosine of the user vector and the item.

    That is the scale --threshold compares. After `tune`, `recommend` ranks with the
    adapter instead, whose scores are not cosines.
    """
    from localrec.recommend.recommender import Recommender

    _one_format(as_json, as_csv)
    db = _db_path(ctx)
    with Recommender(
        db, model_name, user_vector=user_vector or "hybrid", verbose=ctx.obj["verbose"]
    ) as rec:
        scored = rec.score(user, list(items), from_domains=_domains(from_domains))
        tuned = rec.has_adapter()
    if tuned and user_vector in (None, "hybrid"):
        _say("cosines of the zero-shot hybrid user vector; `recommend` ranks with the adapter")
    _print_recommendations(scored, as_json, as_csv, False)


@cli.command()
@click.argument("item")
@click.option("--domain", help="Domain to search (default: the item's own).")
@click.option(
    "-k", "k", type=click.IntRange(1), default=10, show_default=True, help="How many items."
)
@_MODEL
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.pass_context
def similar(
    ctx: click.Context,
    item: str,
    domain: str | None,
    k: int,
    model_name: str | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Items closest to ITEM."""
    from localrec.recommend.recommender import Recommender

    _one_format(as_json, as_csv)
    db = _db_path(ctx)
    with Recommender(db, model_name, verbose=ctx.obj["verbose"]) as rec:
        items = rec.similar(item, domain=domain, k=k)
    _print_recommendations(items, as_json, as_csv, False)


@cli.command()
@click.argument("user")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def forget(ctx: click.Context, user: str, yes: bool) -> None:
    """Delete every event and vector of USER, then VACUUM so the bytes are gone."""
    if not yes:
        click.confirm(f"Delete all data of user {user!r}?", abort=True)
    with _open_store(ctx) as store:
        n = store.forget_user(user)
    click.echo(f"deleted {n} row(s) of user {user!r} and vacuumed the database")


@cli.group(cls=LocalrecGroup)
def threshold() -> None:
    """Choose θ for threshold lists R(u) = {p | s(u,p) >= θ}."""


@threshold.command("suggest")
@click.option("--domain", required=True, help="The domain the lists are for.")
@click.option("--from", "from_domains", help="Use only history from these domains.")
@_USER_VECTOR
@_MODEL
@click.option("--max-users", type=click.IntRange(1), help="Replay at most this many users.")
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path), help="Draw the curve to a PNG."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def threshold_suggest(
    ctx: click.Context,
    domain: str,
    from_domains: str | None,
    user_vector: UserVector | None,
    model_name: str | None,
    max_users: int | None,
    plot: Path | None,
    as_json: bool,
) -> None:
    """Replay each user's last event: precision, recall and list size for each θ."""
    from localrec.recommend.recommender import Recommender
    from localrec.recommend.threshold import plot_curve, suggest_threshold

    if plot is not None:
        _check_output_dir(plot, "--plot")
    db = _db_path(ctx)
    with Recommender(
        db, model_name, user_vector=user_vector or "hybrid", verbose=ctx.obj["verbose"]
    ) as rec:
        report = suggest_threshold(
            rec, domain, from_domains=_domains(from_domains), max_users=max_users
        )
    if plot is not None:
        plot_curve(report, plot)
        _say(f"wrote {plot}")
    rows = [
        {
            "theta": p.theta,
            "precision": p.precision,
            "recall": p.recall,
            "f1": p.f1,
            "mean_size": p.mean_size,
        }
        for p in report.points
    ]
    if as_json:
        click.echo(
            format_json(
                {
                    "domain": domain,
                    "users": report.users,
                    "suggested": report.suggested.theta,
                    "curve": rows,
                }
            )
        )
        return
    shown = [r for r in rows if r["mean_size"] >= 0.05]
    click.echo(format_table(shown, ["theta", "precision", "recall", "f1", "mean_size"]))
    s = report.suggested
    click.echo(
        f"\nsuggested θ = {s.theta:g}: recall {s.recall:.3f}, precision {s.precision:.4f}, "
        f"mean list size {s.mean_size:.1f} ({report.users} users replayed)"
    )


# -- evaluation --------------------------------------------------------------------------


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


@cli.command("eval")
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
    from localrec.evaluation.report import format_results, write_report
    from localrec.evaluation.runner import evaluate_database, evaluate_dataset

    _dataset_or_db(ctx, dataset_dir)
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
    if dataset_dir is not None:
        report = evaluate_dataset(dataset_dir, **options)
    else:
        with _open_store(ctx) as store:
            report = evaluate_database(store, domain, **options)
    if report_dir is not None:
        path = write_report(report, report_dir, "localrec " + " ".join(sys.argv[1:]))
        _say(f"wrote {path}")
    if as_json:
        run = {"split": report.split, "negatives": report.n_negatives, "seed": report.seed}
        results = {"results": report.as_dicts(), "slices": report.slice_dicts()}
        if report.comparisons:
            results["comparisons"] = [c.as_dict() for c in report.comparisons]
        click.echo(format_json({**run, **results}))
    else:
        click.echo(format_results(report))


@cli.command()
@click.argument(
    "dataset_dir", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@_MODEL
@click.option("--seed", type=int, default=0, show_default=True, help="Seed: same seed, same bytes.")
@click.option(
    "--epochs", type=click.IntRange(1, 100), help="Most epochs to train (best on valid kept)."
)
@click.option("--dim", type=click.IntRange(4, 512), help="Size of the learned space.")
@click.pass_context
def tune(
    ctx: click.Context,
    dataset_dir: Path | None,
    model_name: str | None,
    seed: int,
    epochs: int | None,
    dim: int | None,
) -> None:
    """Learn an adapter on the frozen vectors from DATASET_DIR's training files, or --db events.

    The best epoch on the validation split (a dataset's valid.txt, or each database user's
    last event) is kept, with the blend weights of its hybrid with item-kNN and item-kNN's
    two-step walk per domain. `recommend` and `eval` use it from then on; `eval
    --no-adapter` leaves it out.
    """
    from localrec.cli.output import Progress
    from localrec.data.protocol import RARE_TARGET_MAX
    from localrec.scoring.adapter import AdapterConfig
    from localrec.tuning.run import tune_database, tune_dataset

    overrides = {
        k: v for k, v in {"seed": seed, "epochs": epochs, "dim": dim}.items() if v is not None
    }
    config = AdapterConfig(**overrides)  # type: ignore[arg-type]
    bar = Progress("training", unit="batches")

    def on_epoch(domain: str, epoch: int, mean: float, ndcg: dict[str, float]) -> None:
        parts = ", ".join(f"{k} {100 * v:.2f}" for k, v in ndcg.items())
        _say(f"{domain} epoch {epoch}: valid NDCG@10 {parts} (%)")

    _dataset_or_db(ctx, dataset_dir)
    kwargs = dict(on_epoch=on_epoch, on_batch=bar, encode_progress=Progress("encoding items"))
    if dataset_dir is not None:
        adapter = tune_dataset(dataset_dir, model_name, config, **kwargs)  # type: ignore[arg-type]
    else:
        with _open_store(ctx) as store:
            adapter = tune_database(store, model_name, config, **kwargs)  # type: ignore[arg-type]
    for d, a in adapter.domains.items():
        weights = _per_setting(a.hybrid_weight)
        if a.rare_weight is not None:
            weights += f", items seen 1-{RARE_TARGET_MAX} times {a.rare_weight:g}"
        hybrid = ", ".join(
            f"{k} {100 * v:.2f}% (zero-shot {100 * a.zero_shot_ndcg[k]:.2f}%)"
            for k, v in a.hybrid_ndcg.items()
        )
        click.echo(
            f"{adapter.domain_names[d]}: epoch {a.epoch}, valid NDCG@10 "
            + ", ".join(f"{k} {100 * v:.2f}%" for k, v in a.valid_ndcg.items())
            + f"; collaborative weight {weights}; two-hop weight "
            + f"{_per_setting(a.two_hop_weight)}; cold users' text weight "
            + f"{_per_setting(a.cold_weight)}; hybrid {hybrid}"
        )
    for name, why in adapter.dropped.items():
        click.echo(f"{name}: no adapter kept, zero-shot serves it: {why}")
    click.echo(
        f"trained on {adapter.train_pairs} pairs in {adapter.seconds:.0f} s (model {adapter.model})"
    )
