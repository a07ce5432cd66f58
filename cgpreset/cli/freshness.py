"""`cgpreset freshness`: is the stored data fresh? From the store alone, with no request to the API."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cgpreset.cli.app import App, fail, pass_app, print_tables
from cgpreset.cli.logs import quiet


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
    from cgpreset.cli.present.freshness import freshness_table
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

