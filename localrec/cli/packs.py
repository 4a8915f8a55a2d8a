"""`localrec pack build` and `localrec pack info`: the vendor's side of packs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from localrec.cli.common import LocalrecGroup, check_output_dir, dataset_or_db, open_store, say
from localrec.cli.output import format_json

__all__ = ["pack"]


@click.group(cls=LocalrecGroup)
def pack() -> None:
    """Build and inspect packs: a catalogue, its vectors, the adapter and item-to-item
    aggregates in one read-only file, with no person's events in it."""


@pack.command("build")
@click.argument(
    "dataset_dir", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The pack file to write (FILE.lrpack); replaced only once it is complete.",
)
@click.option("--model", "model_name", help="Model whose vectors and adapter to pack.")
@click.option(
    "--min-users",
    type=click.IntRange(1),
    default=None,
    help="K: a pair or an item counts only when at least K distinct users had it "
    "(default: packs.aggregates.DEFAULT_MIN_USERS, see the README).",
)
@click.option(
    "--neighbours",
    type=click.IntRange(0),
    default=None,
    help="N: neighbours kept per item, the heaviest (0: all; default 100).",
)
@click.option(
    "--full-precision",
    is_flag=True,
    help="float32 vectors and float64 weights (twice the size; for exact comparisons).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: encode the items and count the pairs on a Ray cluster (pip install "
    "'localrec[ray]'; docs/ray.md).",
)
@click.option(
    "--address",
    help="The Ray cluster to run on (e.g. ray://head:10001 or head:6379); without it, a "
    "local Ray cluster is started on this machine for the build.",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="CPUs of Ray to use (default: all of the cluster's).",
)
@click.option(
    "--events",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="With --engine ray and --db: read the users' events from these files instead of "
    "the database: Parquet, or a directory of CSV or JSON Lines (columns user, item, time).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was built as JSON.")
@click.pass_context
def build(
    ctx: click.Context,
    dataset_dir: Path | None,
    out: Path,
    model_name: str | None,
    min_users: int | None,
    neighbours: int | None,
    full_precision: bool,
    engine: str,
    address: str | None,
    workers: int | None,
    events: Path | None,
    as_json: bool,
) -> None:
    """Build a pack from DATASET_DIR's training files or --db's events, after encode/tune."""
    from localrec.packs.aggregates import DEFAULT_MIN_USERS, DEFAULT_NEIGHBOURS
    from localrec.packs.build import build_pack

    dataset_or_db(ctx, dataset_dir)
    check_output_dir(out, "--out")
    options: dict[str, Any] = dict(
        model=model_name,
        min_users=DEFAULT_MIN_USERS if min_users is None else min_users,
        neighbours=DEFAULT_NEIGHBOURS if neighbours is None else neighbours,
        full_precision=full_precision,
        engine=engine,
        address=address,
        workers=workers,
        events=events,
        step=say,
    )
    if dataset_dir is not None:
        built = build_pack(out, dataset_dir=dataset_dir, **options)
    else:
        with open_store(ctx) as store:
            built = build_pack(out, store=store, **options)
    size = out.stat().st_size
    if as_json:
        click.echo(
            format_json(
                {
                    "path": str(built.path),
                    "bytes": size,
                    "items": built.items,
                    "users": built.users,
                    "neighbour_pairs": built.pairs,
                    "adapter_items": built.adapter_items,
                    "seconds": round(built.seconds, 1),
                }
            )
        )
        return
    click.echo(
        f"wrote {built.path} ({size / 1e6:.1f} MB): {built.items} items, {built.pairs} "
        f"neighbour pairs, learned rows for {built.adapter_items} items, from {built.users} "
        f"users' events ({built.seconds:.1f} s)"
    )


@pack.command("info")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(file: Path, as_json: bool) -> None:
    """What a pack holds: its provenance, privacy settings, counts and sizes."""
    from localrec.packs.pack import open_pack

    data = open_pack(file).info()
    if as_json:
        click.echo(format_json(data))
        return
    click.echo(f"pack        {data['path']} ({data['file_bytes'] / 1e6:.1f} MB)")
    click.echo(f"format      {data['format_version']} (localrec {data['localrec_version']})")
    click.echo(f"built       {data['built_at']} from {data['source']}")
    click.echo(f"model       {data['model']} (dim {data['dim']}, {data['vector_dtype']})")
    click.echo(f"  gguf sha256 {data['model_sha256']}")
    click.echo(f"checksum    {data['checksum']}")
    click.echo("items")
    for domain, n in data["items"].items():
        click.echo(f"  {domain:<20} {n}")
    click.echo(f"privacy     K = {data['min_users']}, N = {data['neighbours'] or 'all'}")
    click.echo(f"  neighbour pairs          {data['neighbour_pairs']}")
    click.echo(f"  items with popularity    {data['items_with_popularity']}")
    adapter = ", ".join(data["adapter_domains"]) or "none (zero-shot text and item-kNN)"
    click.echo(f"adapter     {adapter}")
    click.echo("sizes")
    for part, n in data["part_bytes"].items():
        click.echo(f"  {part:<20} {n / 1e6:.1f} MB")
    click.echo(data["reveals"])
