"""`localrec models …` (list, pull, add, info, convert) and `localrec embed`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

import click

from localrec.cli.common import LocalrecGroup, check_output_dir, say
from localrec.cli.output import format_json, format_table, human_size

__all__ = ["embed", "models"]


@click.group(cls=LocalrecGroup)
def models() -> None:
    """List, pull, add, inspect and convert embedding models."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models_list(as_json: bool) -> None:
    """Show the registered models and which are on disk."""
    from localrec.models.cache import list_models
    from localrec.models.registry import load_registry

    registry = load_registry()
    rows = [row.to_dict(registry.default) for row in list_models(registry)]
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

    result = pull_model(name, force=force, step=say)
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
    info = convert_checkpoint(directory, out, quant, on_step=say)
    click.echo(
        f"wrote {out} ({human_size(info.file_size)}, {info.architecture}, "
        f"{info.embedding_length} dims, {info.pooling} pooling)"
    )


@click.command()
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
    text_file: IO[str] | None,
    as_json: bool,
    npy: Path | None,
) -> None:
    """Embed TEXTS (or one text per line of --file or stdin) and print the vectors."""
    from localrec.embedding.embed_texts import embed_texts, save_npy

    if npy is not None:
        check_output_dir(npy, "--npy")
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
        say(f"wrote {len(lines)} x {result.dim} vectors to {npy}")
    if as_json:
        click.echo(format_json(result.to_lists()))
    elif npy is None:
        rows = result.summaries(lines)
        for row in rows:
            row["first values"] = ", ".join(f"{v:+.4f}" for v in row["first"])
        click.echo(format_table(rows, ["text", "dim", "norm", "first values"]))
    if result.truncated:
        say(
            f"{result.truncated} text(s) were longer than {result.max_tokens} tokens "
            "and were truncated"
        )
