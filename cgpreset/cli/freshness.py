"""`cgpreset freshness`: is the stored data fresh? From the store alone, with no request to the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cgpreset.cli.app import App, fail, pass_app, print_tables
from cgpreset.cli.logs import quiet

if TYPE_CHECKING:
    from rich.table import Table

    from cgpreset.run.freshness import FreshnessReport


def freshness_table(report: FreshnessReport) -> Table:
    """coin, layer, interval, last closed bar, age / limit in bars, missing bars, known holes, status."""
    from rich import box
    from rich.table import Table

    from cgpreset.cli.present.text import droppable, format_time
    from cgpreset.run.freshness import FRESH, NEVER

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in (("coin", "left"), ("layer", "left"), ("interval", "left"), ("last bar (UTC)", "left"),
                          ("age/limit", "right"), ("missing", "right"), ("known holes", "right"),
                          ("status", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    styles = {FRESH: "green", NEVER: "red"}
    for f in report.series:
        age = "-" if f.age_bars is None else f"{f.age_bars:.1f}/{f.limit_bars:g}"
        table.add_row(f.series.coin, f.series.layer, f.series.interval, format_time(f.last_bar), age,
                      _count(f.missing_bars), _count(f.known_hole_bars),
                      f"[{styles.get(f.status, 'red')}]{f.status}[/]")
    return droppable(table, "interval", "known holes", "missing")


def _count(bars: int | None) -> str:
    return "-" if bars is None else str(bars)


@click.command("freshness")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--store", "store", default=None, metavar="STORE",
              help="SQLite file or postgresql:// URL to judge [default: CGPRESET_STORE or ./cgpreset.db].")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable document (cgpreset.freshness/1) on stdout.")
@pass_app
def freshness_cmd(app: App, paths: tuple[Path, ...], store: str | None, as_json: bool) -> None:
    """Is the stored data fresh? Per series of the configs in PATH...: the open time of its last
    closed bar in the store, its age in bars, the limit (the config's health.freshness_intervals),
    the closed bars of its wanted range the store lacks and its known holes.

    Reads the store only (read-only: never creates or changes it) and makes no request to the API.
    Exit 0 when every series is fresh, 1 when one is stale or was never fetched, 2 for bad configs
    or a store that cannot be read. -q prints only the summary line.

    \b
    Examples:
        cgpreset freshness deploy/
        cgpreset freshness deploy/ --store postgresql://cg@db/cgpreset --json
    """
    from cgpreset.models.config import load_configs
    from cgpreset.run.freshness import read_freshness
    from cgpreset.store.dsn import store_location

    configs = load_configs(list(paths))
    report = read_freshness(configs, store_location(store if store is not None else app.settings.store))
    if report.missing_store:
        click.echo(f"note: {report.store} does not exist: no run has written it yet", err=True)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        if not quiet():
            print_tables(freshness_table(report))
        click.echo(report.summary())
    if report.exit_code:
        fail(report.exit_code)

