"""Ranking and scoring: `recommend`, `score`, `similar` and `threshold suggest`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from localrec.cli.common import (
    MODEL,
    USER_VECTOR,
    LocalrecGroup,
    check_output_dir,
    domains,
    open_recommender,
    say,
)
from localrec.cli.output import format_json, format_table

if TYPE_CHECKING:
    from localrec.recommend.recommender import UserVector
    from localrec.recommend.results import Recommendation

__all__ = ["recommend", "score", "similar", "threshold"]


def _one_format(as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")


def _because(detail: dict[str, Any]) -> str:
    """One reason, short enough for a table cell: what the user did ("bought Dune",
    "rated The Martian 5/5"), then the text cosine or the item's share of the CF score."""
    from localrec.text import action_phrase

    said = action_phrase(detail["action"], detail["title"][:40], detail["value"])
    if detail["cf_share"] is None:
        return f"{said} (similar text, cosine {detail['cosine']:.2f})"
    return f"{said} ({detail['reason']}: {detail['cf_share']:.0%})"


def _print_recommendations(
    items: Sequence[Recommendation],
    as_json: bool,
    as_csv: bool,
    explain: bool,
    ranked: bool = True,
) -> None:
    """A list as JSON (the items), CSV or a table; `ranked`: the order is a ranking, so
    the table numbers it (`score` keeps the order the items were given in)."""
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
        row["rank"] = rank
        row["because you"] = [_because(d) for d in row["because_detail"]]
    shown = ["rank", "item_id", "score", "title"] if ranked else columns
    click.echo(
        format_table(
            rows, [*shown, *(["because you"] if explain else [])], max_width=70 if explain else 80
        )
    )


@click.command()
@click.argument("user", required=False)
@click.option("--domain", required=True, help="The domain to recommend from.")
@click.option(
    "--history",
    help=(
        'An ad-hoc user, stored nowhere: "bought a phone; rated a laptop 5/5" (at most '
        "200,000 characters and 1,000 events; each distinct phrase is embedded once)."
    ),
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
@USER_VECTOR
@MODEL
@click.option("--explain", is_flag=True, help="Name the history items behind each recommendation.")
@click.option("--include-seen", is_flag=True, help="Keep items the user already has.")
@click.option(
    "--no-fallback",
    is_flag=True,
    help="No popular items for a user without history: nothing, and exit code 4.",
)
@click.option(
    "--no-adapter",
    is_flag=True,
    help="Leave out the tuned adapter: zero-shot text everywhere (Python: adapter=False).",
)
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
    no_adapter: bool,
    lang: str,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Recommend DOMAIN items for USER (or for an ad-hoc --history).

    Notes go to stderr: a list that is not personal (popular items for a user without
    history), items left out or ranked by an old text. --json prints the whole list: its
    items, `fallback` ("popular" or null) and the notes. With --no-fallback a user without
    usable history gets no list and exit code 4.
    """
    from localrec.cli.exit_codes import NO_PERSONAL_LIST

    if (user is None) == (history is None):
        raise click.UsageError("give a USER or --history TEXT (one of them)")
    _one_format(as_json, as_csv)
    if k is not None and k <= 0:
        raise click.BadParameter(f"{k} is not a positive number of items", param_hint="-k")
    if threshold is not None and not -1 <= threshold <= 1:
        raise click.BadParameter(
            f"{threshold} is not a cosine in [-1, 1]", param_hint="--threshold"
        )
    with open_recommender(
        ctx, model_name, user_vector=user_vector or "hybrid", lang=lang, adapter=not no_adapter
    ) as rec:
        result = rec.recommend(
            user,
            domain=domain,
            history=history,
            k=k,
            threshold=threshold,
            from_domains=domains(from_domains),
            explain=explain,
            include_seen=include_seen,
            fallback=not no_fallback,
        )
    personal = result.history_size > 0
    for note in result.notes:
        say(note if personal or not no_fallback else f"no recommendations: {note}")
    if as_json:
        click.echo(format_json(result.to_dict()))
    elif personal or not no_fallback:
        _print_recommendations(result.items, False, as_csv, explain)
    if no_fallback and not personal:
        ctx.exit(NO_PERSONAL_LIST)


@click.command()
@click.argument("user")
@click.argument("items", nargs=-1, required=True)
@click.option("--from", "from_domains", help="Use only history from these domains.")
@USER_VECTOR
@MODEL
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
    """Print s(USER, ITEM) for each ITEM, in the order given: the cosine of the user vector
    and the item.

    That is the scale --threshold compares. After `tune`, `recommend` ranks with the
    adapter instead, whose scores are not cosines.
    """
    _one_format(as_json, as_csv)
    with open_recommender(ctx, model_name, user_vector=user_vector or "hybrid") as rec:
        scored = rec.score(user, list(items), from_domains=domains(from_domains))
        tuned = rec.has_adapter()
    if tuned and user_vector in (None, "hybrid"):
        say("cosines of the zero-shot user vector; `recommend` ranks with the adapter")
    _print_recommendations(scored, as_json, as_csv, False, ranked=False)


@click.command()
@click.argument("item")
@click.option("--domain", help="Domain to search (default: the item's own).")
@click.option(
    "-k", "k", type=click.IntRange(1), default=10, show_default=True, help="How many items."
)
@MODEL
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
    _one_format(as_json, as_csv)
    with open_recommender(ctx, model_name) as rec:
        items = rec.similar(item, domain=domain, k=k)
    _print_recommendations(items, as_json, as_csv, False)


@click.group(cls=LocalrecGroup)
def threshold() -> None:
    """Choose θ for threshold lists R(u) = {p | s(u,p) >= θ}."""


@threshold.command("suggest")
@click.option("--domain", required=True, help="The domain the lists are for.")
@click.option("--from", "from_domains", help="Use only history from these domains.")
@USER_VECTOR
@MODEL
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
    """Replay each user's last event: precision, recall and list size for each θ.

    With fewer than 30 users replayed it warns (stderr, and `notes` in --json): the
    suggested θ is then mostly noise.
    """
    from localrec.recommend.threshold import plot_curve, suggest_threshold

    if plot is not None:
        check_output_dir(plot, "--plot")
    with open_recommender(ctx, model_name, user_vector=user_vector or "hybrid") as rec:
        report = suggest_threshold(
            rec, domain, from_domains=domains(from_domains), max_users=max_users
        )
    if plot is not None:
        plot_curve(report, plot)
        say(f"wrote {plot}")
    for note in report.notes:
        say(f"warning: {note}")
    data = report.to_dict()
    if as_json:
        click.echo(format_json(data))
        return
    shown = [r for r in data["curve"] if r["mean_size"] >= 0.05]
    click.echo(format_table(shown, ["theta", "precision", "recall", "f1", "mean_size"]))
    s = report.suggested
    click.echo(
        f"\nsuggested θ = {s.theta:g}: recall {s.recall:.3f}, precision {s.precision:.4f}, "
        f"mean list size {s.mean_size:.1f} ({report.users} users replayed)"
    )
