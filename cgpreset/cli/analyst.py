"""`cgpreset export` and `cgpreset report`: the store's analyst views as files and as an offline HTML page."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cgpreset.cli.app import App, check_output, pass_app
from cgpreset.clock import wall_ms
from cgpreset.errors import ExitCode

_STORE_HELP = "Store: an SQLite file or a postgresql:// URL [default: CGPRESET_STORE or ./cgpreset.db]."


@click.command("export")
@click.argument("layer", metavar="LAYER")
@click.option("--store", "store", default=None, metavar="STORE", help=_STORE_HELP)
@click.option("--coin", "coins", multiple=True, metavar="C", help="Only this coin (repeatable).")
@click.option("--since", default=None, metavar="DURATION", help="Only bars from the last DURATION (30d, 12h, 2w).")
@click.option("--start", default=None, metavar="T", help="Only bars opening at or after T (ISO-8601 UTC or ms).")
@click.option("--end", default=None, metavar="T", help="Only bars opening before T (ISO-8601 UTC or ms).")
@click.option("--closed-only", is_flag=True, help="Leave out the still-forming bar of each series.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), default="csv", show_default=True,
              help="Output format (parquet needs --output).")
@click.option("--output", "output", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write to FILE (replaced atomically) instead of stdout.")
@pass_app
def export_cmd(app: App, layer: str, store: str | None, coins: tuple[str, ...], since: str | None,
               start: str | None, end: str | None, closed_only: bool, fmt: str, output: Path | None) -> None:
    """Write one analyst view of the store as CSV, JSON Lines or Parquet. LAYER: any layer of the
    catalogue (`cgpreset layers` lists them; ./layers/*.yaml join the shipped ones), a layer's
    detail view such as etf_flows_by_ticker, or liquidation_events (the stream's).

    Columns are the view's; rows are ordered by series, then time (`time` is the bar open in ms
    UTC, a UTC timestamp in Parquet). Streamed in batches: any window fits in memory. A layer the
    store has no view for yet is written empty, with a note on stderr. Exit 0 written, 2 bad
    flags, an unknown layer, an unreadable store or an unwritable output.

    \b
    Examples:
        cgpreset export open_interest --coin SOL --since 30d > sol-oi.csv
        cgpreset export funding --closed-only --format parquet --output funding.parquet
    """
    from cgpreset.analyst.export import export_view
    from cgpreset.analyst.source import connect
    from cgpreset.analyst.views import make_selection
    from cgpreset.layers import REPO_LAYERS, use
    from cgpreset.store.dsn import store_location

    use([REPO_LAYERS])  # a repo's own layers (./layers/*.yaml) are exported like the shipped ones
    sel = make_selection(coins=coins, since=since, start=start, end=end, closed_only=closed_only,
                         now_ms=wall_ms())
    location = store_location(store if store is not None else app.settings.store)
    if output is not None:
        check_output(output, "--output", store=location)
    with connect(location) as conn:
        done = export_view(conn, layer, sel, fmt, output=output, stdout=sys.stdout.buffer)
    if done.missing is not None:
        click.echo(f"note: {done.missing}", err=True)
    if output is not None:
        click.echo(f"exported {done.rows} rows of {layer} to {output.as_posix()}", err=True)


@click.command("report")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--store", "store", default=None, metavar="STORE", help=_STORE_HELP)
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), required=True, metavar="FILE",
              help="Write the report to FILE (replaced atomically).")
@click.option("--source", type=click.Choice(["api", "emulator"]), default=None,
              help="Where the store's data came from, stated on the page [default: what the store records].")
@pass_app
def report_cmd(app: App, paths: tuple[Path, ...], store: str | None, html_path: Path, source: str | None) -> None:
    """Write one self-contained HTML page (no network needed) of the configs in PATH... as stored.

    Per coin: a chart of every layer its config runs, over the stored window, then the
    liquidation events the stream stored (when the store holds any); each macro layer once.
    Each series' health verdict with gaps, stale data and failed checks marked on its chart; a
    summary table on top; the data's source stated plainly. A layer the store has no view for
    yet is empty, with a note on stderr. Exit 0 every series ok, 1 a series failed its checks
    or has no rows, 2 bad input.

    \b
    Example:
        cgpreset report deploy/ --store cgpreset.db --html report.html
    """
    from cgpreset.analyst.report import write_report
    from cgpreset.models.config import load_configs
    from cgpreset.store.dsn import store_location

    configs = load_configs(list(paths))
    location = store_location(store if store is not None else app.settings.store)
    check_output(html_path, "--html", store=location, inputs=[p for p, _ in configs])
    result = write_report(configs, location, html_path, source=source, now_ms=wall_ms())
    for note in result.missing:
        click.echo(f"note: {note}", err=True)
    click.echo(f"report: {html_path.as_posix()} ({result.size_bytes / 1e6:.1f} MB, {result.charts} charts, "
               f"{result.failed} failed, {result.empty} empty)")
    if result.failed or result.empty:
        click.get_current_context().exit(ExitCode.FINDINGS)
