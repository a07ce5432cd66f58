"""`cgpreset health`: the "4 shots" sign-off, with its own short budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cgpreset.cli.app import App, Number, check_output, pass_app, print_tables
from cgpreset.cli.logs import quiet
from cgpreset.cli.run import (
    _PATH,
    _check_sources,
    _deliveries,
    _exit,
    _location,
    concurrency_option,
    json_option,
    metrics_option,
    pushgateway_option,
)

if TYPE_CHECKING:  # the command imports its machinery when it runs (fast --help, see cli/__init__.py)
    from prometheus_client import CollectorRegistry

    from cgpreset.api.client import CoinGlassClient
    from cgpreset.run.health import HealthReport

#: The quick sign-off's own budget: a hanging endpoint costs seconds, not 5 attempts x 30 s.
HEALTH_ATTEMPTS = 2
HEALTH_READ_TIMEOUT = 10.0
HEALTH_ANSWER_TIMEOUT = 15.0


def _quick_client(app: App, deadline: float | None) -> CoinGlassClient:
    """A client for `health`: at most HEALTH_ATTEMPTS tries, short timeouts, and `--deadline`."""
    from cgpreset.api.client import CoinGlassClient

    t = app.target
    s = t.settings
    quick = s.model_copy(update={
        "max_attempts": min(s.max_attempts, HEALTH_ATTEMPTS),
        "read_timeout": min(s.read_timeout, HEALTH_READ_TIMEOUT),
        "answer_timeout": min(s.answer_timeout, HEALTH_ANSWER_TIMEOUT),
        "backoff_max": min(s.backoff_max, 1.0),
    })
    client = CoinGlassClient(quick, base_url=t.base_url)
    if deadline is not None:
        client.deadline = client.clock + deadline
    return client


@click.command()
@click.argument("paths", nargs=-1, required=True, type=_PATH)
@json_option
@click.option("--store", "store", default=None, metavar="STORE",
              help="Store whose data freshness joins the sign-off (as `cgpreset freshness`; also when "
                   "CGPRESET_STORE is set) and whose stream liveness to show: an SQLite file or a postgresql:// "
                   "URL [default: CGPRESET_STORE or ./cgpreset.db, liveness only].")
@metrics_option
@pushgateway_option
@concurrency_option
@click.option("--deadline", type=Number(min=0), default=None, metavar="SECONDS",
              help="Stop after SECONDS: shots not answered by then are failed.")
@pass_app
def health(app: App, paths: tuple[Path, ...], as_json: bool, store: str | None,
           metrics_path: Path | None, pushgateway: str | None, concurrency: int | None,
           deadline: float | None) -> None:
    """The "4 shots": one minimal call per core layer of each config, plus ETF flows once.

    OK only if code "0", rows came back and they have the expected fields. Shows the key's plan,
    its rate budget and, if a stream has run, its liveness. With --store (or CGPRESET_STORE), the
    store's data must be fresh too (see `cgpreset freshness`). Nothing is stored. Exit codes as
    run-preset; -q prints only the verdict line.

    \b
    Example:
        cgpreset health deploy/
    """
    from cgpreset.cli.present.health import health_summary, health_table, verdict_line
    from cgpreset.cli.progress import show_progress
    from cgpreset.models.config import load_configs
    from cgpreset.run.freshness import read_freshness
    from cgpreset.run.health import run_health
    from cgpreset.settings import DEFAULT

    app.override(concurrency=concurrency)
    configs = load_configs(list(paths))
    _check_sources(app, configs)
    app.check_target()
    location = _location(app, store)
    fresh = None
    if store is not None or app.settings.origin("store") != DEFAULT:  # a store named: its data joins the verdict
        fresh = read_freshness(configs, location)  # read-only, before any shot: a bad store is exit 2 now
        if fresh.missing_store:
            click.echo(f"note: {fresh.store} does not exist: no run has written it yet", err=True)
    if metrics_path is not None:
        check_output(metrics_path, "--metrics", store=location, inputs=[p for p, _ in configs])
    gateway = pushgateway or app.settings.pushgateway
    client = _quick_client(app, deadline)
    try:
        with show_progress("health", client) as progress:
            report = run_health(configs, client, store_path=location, concurrency=app.settings.concurrency,
                                source=app.source, on_plan=None if progress is None else progress.expect_shots,
                                freshness=fresh)
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    elif quiet():  # -q: the verdict line only
        click.echo(verdict_line(report))
    else:
        print_tables(health_table(report))
        click.echo("\n".join(health_summary(report)))
    _exit(report.exit_code, report.error or next((s.error for s in report.shots if s.error is not None), None),
          metrics=_deliveries(lambda: _health_registry(report), metrics_path, gateway, command="health"))


def _health_registry(report: HealthReport) -> CollectorRegistry:
    from cgpreset.run.metrics import health_registry

    return health_registry(report)
