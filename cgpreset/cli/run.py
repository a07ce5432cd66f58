"""`cgpreset run-preset`, `health` and `demo`: fetch, check and store the watchlist's data."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from cgpreset._io import DEFAULT_DEMO_DIR, write_atomic
from cgpreset.cli.app import (
    App,
    Number,
    check_output,
    fail,
    new_store,
    pass_app,
    print_tables,
    refuse_file_store_in_pod,
)
from cgpreset.cli.logs import quiet
from cgpreset.clock import wall_ms
from cgpreset.errors import CgPresetError, ConfigError, ExitCode, OutputError
from cgpreset.plans import Plan
from cgpreset.store import open_store
from cgpreset.store.dsn import StoreLocation, display, store_location

if TYPE_CHECKING:  # the commands import their machinery when they run (fast --help, see cli/__init__.py)
    from prometheus_client import CollectorRegistry

    from cgpreset.models.config import CoinConfig
    from cgpreset.run.series import RunPlan
    from cgpreset.run.shard import Shard
    from cgpreset.store.base import Coverage, KnownPlan

_PATH = click.Path(path_type=Path)
_STORE_HELP = "Store: an SQLite file or a postgresql:// URL [default: CGPRESET_STORE or ./cgpreset.db]."
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable report on stdout.")
metrics_option = click.option(
    "--metrics", "metrics_path", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
    help="Also write Prometheus text-format metrics to FILE (replaced atomically; for node_exporter's "
         "textfile collector).")


def _gateway_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """--pushgateway checked as CGPRESET_PUSHGATEWAY is (a usage error, exit 2, before anything runs)."""
    if value is None:
        return None
    from cgpreset.settings import pushgateway_url

    try:
        return pushgateway_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


pushgateway_option = click.option(
    "--pushgateway", default=None, metavar="URL", callback=_gateway_url,
    help="Also push the metrics to this Prometheus Pushgateway (job cgpreset-run or cgpreset-health, grouped by "
         "shard; stale shards' groups deleted) [default: CGPRESET_PUSHGATEWAY].")
concurrency_option = click.option(
    "--concurrency", type=click.IntRange(1, 64), default=None, metavar="N",
    help="Requests in flight at once, 1-64 [default: CGPRESET_CONCURRENCY or 16].")


def _peek(location: StoreLocation, *, source: str | None = None, time_left: Callable[[], float | None] | None = None
          ) -> tuple[dict[str, Coverage], KnownPlan | None]:
    """What the store holds and the plan its last run recorded, read-only: a store that does not exist
    yet is neither created nor changed. With `source`, a store holding another source's data is
    refused (ConfigError) here, before any request."""
    from cgpreset.run.source import check_source

    if isinstance(location, Path) and not location.exists():
        return {}, None
    with open_store(location, readonly=True, time_left=time_left) as st:
        if source is not None:
            check_source(st.sources(), source, store=display(location))
        return st.coverage(), st.known_plan()


def _dry_plan(app: App, configs: list[tuple[Path, CoinConfig]], known: KnownPlan | None) -> Plan:
    """The plan to estimate at, with no call when it is known: CGPRESET_PLAN if set; with --emulator,
    the lowest plan the configs were written for; the plan a run recorded in the store within a day
    (as the run itself reuses it); else the key's plan (one account/subscription call, no data; no
    key is exit 3)."""
    from cgpreset.run.planning import recent_plan

    if app.settings.plan != "auto":
        return Plan(app.settings.plan)
    if app.emulator:
        return min((cfg.plan for _, cfg in configs), key=lambda p: p.rank)
    return recent_plan(known, wall_ms()) or app.client.plan()


#: A way the metrics leave the process: what to say when it fails, and the call that delivers them.
Delivery = tuple[str, Callable[[], object]]


def _exit(code: int, refused: object = None, *, metrics: Sequence[Delivery] = (),
          record: Callable[[int], None] | None = None) -> None:
    """Exit with the report's code; when the API refused everything, also one `Error:` line on stderr.

    `metrics` are delivered last, after the report is out: a metrics file that cannot be written
    or a push the gateway did not take is one more `Error:` line each, never a lost report; if the
    run itself was ok, the exit is the failure's: 75 for a gateway unreachable or failing (a run
    again later pushes again; the podFailurePolicy retries it), 2 otherwise.
    """
    lines, original = [], code
    if code == ExitCode.API and refused is not None:
        from cgpreset.errors import ErrorKind

        unreachable = getattr(refused, "kind", None) == ErrorKind.TRANSPORT
        lines.append(f"the API {'could not be reached' if unreachable else 'refused every request'}: {refused}")
    for failing, deliver in metrics:
        try:
            deliver()
        except OutputError as exc:
            lines.append(f"{failing}: {exc}")
            code = code or exc.exit_code
    if record is not None and code != original:  # the run's row says what the process says
        record(code)
    if code:  # lines only ever come with a non-zero code
        fail(code, *lines)


def _deliveries(registry: Callable[[], CollectorRegistry], path: Path | None, gateway: str | None, *,
                command: Literal["run-preset", "health"], shard: Shard | None = None) -> list[Delivery]:
    """The textfile (`--metrics FILE`) and the push (`--pushgateway URL`) of one registry, built
    only when one of them is asked for (prometheus_client is imported only then)."""
    if path is None and gateway is None:
        return []
    from cgpreset.run import push
    from cgpreset.run.metrics import exposition

    built = registry()
    out: list[Delivery] = []
    if path is not None:
        out.append(("metrics not written", lambda: write_atomic(path, exposition(built).encode())))
    if gateway is not None:
        index, count = (None, None) if shard is None else (shard.index, shard.count)
        out.append(("metrics not pushed", lambda: push.push(built, gateway, job=push.JOBS[command], index=index,
                                                            count=count, timeout=push.TIMEOUT)))
    return out


@contextmanager
def _stop_pushed(gateway: str | None, shard: Shard | None) -> Iterator[None]:
    """A run that stops on an error before its report (a config, the key, the store: exit 2, 3 or
    75) pushes its exit code and end time to `gateway` beside the group's last metrics, so
    CgpresetRunFailed sees it at once (not two schedules later, as a run that never pushed)."""
    try:
        yield
    except CgPresetError as exc:
        if gateway is not None:
            from cgpreset.run import push
            from cgpreset.run.metrics import stopped_registry

            index, count = (None, None) if shard is None else (shard.index, shard.count)
            try:
                push.push(stopped_registry(exc.exit_code, end_s=wall_ms() / 1000), gateway, job=push.RUN_JOB,
                          index=index, count=count, timeout=push.TIMEOUT, add=True)
            except OutputError as failed:  # the run's own error is the one that counts: said last
                click.echo(f"Error: metrics not pushed: {failed}", err=True)
        raise


#: Seconds by which a shard delays its first request, at most (uniformly random).
START_JITTER = 3.0


def _shard(app: App, spec: str | None) -> Shard | None:
    """`--shard I/N`, else a Kubernetes Indexed Job's JOB_COMPLETION_INDEX of JOB_COMPLETIONS, else None."""
    from cgpreset.run.shard import make_shard, parse_shard

    if spec is not None:
        return parse_shard(spec)
    index, count = app.settings.job_completion_index, app.settings.job_completions
    if index is None and count is None:
        return None
    if index is None or count is None:
        given, missing = ("JOB_COMPLETION_INDEX", "JOB_COMPLETIONS") if count is None else (
            "JOB_COMPLETIONS", "JOB_COMPLETION_INDEX")
        raise ConfigError(f"{given} is set but {missing} is not: set both (this shard, of how many) or neither")
    return make_shard(index, count, source="JOB_COMPLETION_INDEX")


def _check_sources(app: App, configs: list[tuple[Path, CoinConfig]]) -> None:
    """A run against the API refuses configs made from the embedded emulator's discovery (exit 2,
    before any request or store write); configs of older releases, which record no source, get a note."""
    from cgpreset.run.source import check_config_sources

    unrecorded = check_config_sources(configs, embedded=app.emulator)
    if unrecorded:
        more = f" and {len(unrecorded) - 1} more" if len(unrecorded) > 1 else ""
        click.echo(f"note: {unrecorded[0].as_posix()}{more}: provenance records no source (generated by an "
                   "older cgpreset); regenerate to record it", err=True)


def _location(app: App, store: str | None) -> StoreLocation:
    """The store named by --store, else CGPRESET_STORE: a path or a PostgreSQL DSN (shown redacted)."""
    return store_location(store if store is not None else app.settings.store)


def _backfill(run_plan: RunPlan, cap: int | None) -> str:
    """`90 days`: the deepest history a first run of these series fetches (within the plan)."""
    from cgpreset.run.series import backfill_days

    days = [d for p in run_plan.plans if p.series.is_history and (d := backfill_days(p.series, run_plan.plan))]
    deepest = min(max(days, default=0), cap or math.inf)
    return f"{deepest:g} day{'s' if deepest != 1 else ''}"


@click.command("run-preset")
@click.argument("paths", nargs=-1, required=True, type=_PATH)
@json_option
@click.option("--store", "store", default=None, metavar="STORE", help=_STORE_HELP)
@click.option("--dry-run", is_flag=True,
              help="Print the request plan and its budget; no data request, nothing written. The plan: "
                   "CGPRESET_PLAN, else the one a run recorded in the store within a day, else one lookup call.")
@click.option("--full-refresh", is_flag=True, help="Ignore cursors: backfill every series again.")
@click.option("--backfill-days", type=click.IntRange(min=1), default=None, metavar="N",
              help="Backfill at most N days on a series' first run (default: the config's history_days).")
@click.option("--max-requests", type=click.IntRange(min=0), default=None, metavar="N",
              help="Send at most N requests (the plan lookup included); the rest is skipped and resumes next run.")
@metrics_option
@pushgateway_option
@concurrency_option
@click.option("--coins", default=None, metavar="SOL,BTC", help="Run only these coins' configs.")
@click.option("--layers", default=None, metavar="funding,open_interest", help="Run only these layers.")
@click.option("--deadline", type=Number(min=0), default=None, metavar="SECONDS",
              help="Stop after SECONDS: nothing starts, waits or retries past it, requests still running "
                   "are cut; the rest is skipped and resumes next run.")
@click.option("--shard", "shard_spec", default=None, metavar="I/N",
              help="Run only shard I (0-based) of N: a stable split of the series, disjoint and complete over "
                   "the N shards [default: JOB_COMPLETION_INDEX/JOB_COMPLETIONS when set].")
@click.option("--budget-share", type=Number(min=0, max=1, min_open=True), default=None, metavar="F",
              help="Use at most F (0-1] of the key's rate budget, so other processes on the key keep the rest "
                   "[default: 1/N with --shard I/N, else 1].")
@click.option("--keep-raw", is_flag=True,
              help="Also keep every answer's page as it came (table raw_pages); by default only on field drift.")
@pass_app
def run_preset_cmd(app: App, paths: tuple[Path, ...], as_json: bool, store: str | None, dry_run: bool,
                   full_refresh: bool, backfill_days: int | None, max_requests: int | None,
                   metrics_path: Path | None, pushgateway: str | None, concurrency: int | None,
                   coins: str | None, layers: str | None, deadline: float | None, shard_spec: str | None,
                   budget_share: float | None, keep_raw: bool) -> None:
    """Fetch every layer of the configs in PATH... (files or directories) into the store, and check it.

    Incremental: each series resumes from its last closed bar. Exit 0 all ok, 1 a check failed or
    data is missing (empty, failed or skipped series), 2 config error (also: an interval below
    the key's plan's floor, checked before any data request), 3 the API refused everything,
    75 the store failed for now (restarted, locked, disk full): retry later.

    \b
    Examples:
        cgpreset run-preset deploy/ --dry-run
        cgpreset run-preset deploy/ --json --max-requests 200 > run.json
        cgpreset run-preset deploy/ --coins SOL,BTC --layers funding,open_interest
        cgpreset run-preset deploy/ --shard 0/4 --dry-run
        cgpreset run-preset deploy/ --budget-share 0.5
    """
    from cgpreset.cli.present.run import plan_json, plan_summary, plan_table, run_json, run_summary, run_table
    from cgpreset.cli.progress import show_progress
    from cgpreset.models.config import load_configs
    from cgpreset.run.budget import Budget
    from cgpreset.run.engine import run_preset
    from cgpreset.run.planning import check_plan, key_plan, plan_preset
    from cgpreset.run.select import select_configs, split_names

    app.override(concurrency=concurrency)
    shard = _shard(app, shard_spec)
    gateway = pushgateway or app.settings.pushgateway
    with _stop_pushed(None if dry_run else gateway, shard):  # a config, key or store error: its exit code
        loaded = load_configs(list(paths))
        configs = select_configs(loaded, coins=split_names(coins), layers=split_names(layers))
        _check_sources(app, configs)
        location = _location(app, store)
        refuse_file_store_in_pod(location)
        if metrics_path is not None:  # before the run, not after its data is fetched
            check_output(metrics_path, "--metrics", store=location, inputs=[p for p, _ in loaded])
        if dry_run:
            coverage, known = _peek(location)
            rp = plan_preset(configs, plan=_dry_plan(app, configs, known), now_ms=wall_ms(), coverage=coverage,
                             shard=shard, full_refresh=full_refresh, backfill_days=backfill_days)
            if as_json:
                click.echo(json.dumps(plan_json(rp), indent=2, sort_keys=True))
            else:
                print_tables(plan_table(rp))
                click.echo(plan_summary(rp))
            return
        app.check_target()  # no key: exit 3 before the store is created
        created = new_store(location, store)  # a missing folder is refused before any call
        budget = Budget(max_requests=max_requests, deadline_s=deadline)
        share = budget_share if budget_share is not None else 1 / shard.count if shard is not None else 1.0
        # shards started at the same second: a random delay first, so they do not all probe at once
        app.client.limiter.configure(share=share, jitter=START_JITTER if shard is not None and shard.count > 1 else 0)
        budget.arm(app.client.clock)  # the plan lookup below is held to --deadline too
        # The key's plan, and the configs checked against it, before the store is opened: configs the
        # plan cannot serve are refused (exit 2) before a store file exists.
        known = _peek(location, source=app.source, time_left=budget.time_left)[1]
        key = key_plan(app.client, known=known, budget=budget, now_ms=wall_ms())
        if key.plan is not None:
            check_plan(configs, key.plan)
        with open_store(location, time_left=budget.time_left) as st, \
                show_progress("run-preset", app.client) as progress:
            def on_plan(run_plan: RunPlan) -> None:  # the plan checks passed: the run starts
                if created:
                    click.echo(f"note: {location} does not exist: creating a new store "
                               f"({_backfill(run_plan, backfill_days)} of history to backfill)", err=True)
                if progress is not None:
                    progress.expect_run(run_plan)

            result = run_preset(configs, app.client, st, key=key, concurrency=app.settings.concurrency,
                                full_refresh=full_refresh, backfill_days=backfill_days, budget=budget,
                                source=app.source, shard=shard, keep_raw=keep_raw, on_plan=on_plan,
                                job=app.settings.job,
                                retire="all" if coins is None and layers is None else "covered")
            coverage = st.coverage() if metrics_path is not None or gateway is not None else {}

    def record(code: int) -> None:
        if result.run_id is not None:
            with open_store(location, time_left=budget.time_left) as st:
                st.set_exit_code(result.run_id, code)

    try:
        if as_json:
            click.echo(json.dumps(run_json(result, store=display(location)), indent=2, sort_keys=True))
        else:
            if not quiet():  # -q: the summary line only (what cron mails)
                print_tables(run_table(result))
            click.echo(run_summary(result))
    except BrokenPipeError:  # `| head`: the process exits 141, and so does the run's row
        record(ExitCode.OUTPUT_CLOSED)
        raise
    def registry() -> CollectorRegistry:
        from cgpreset.run.metrics import run_registry

        return run_registry(result, coverage=coverage, end_s=wall_ms() / 1000,
                            shards=1 if shard is None else shard.count)

    metrics = _deliveries(registry, metrics_path, gateway, command="run-preset", shard=shard)
    _exit(result.exit_code, next((r.error for r in result.results if r.error is not None), None),
          metrics=metrics, record=record)


@click.command()
@click.option("--out", "out_dir", type=_PATH, default=DEFAULT_DEMO_DIR, show_default=True,
              help="Folder for configs/ (and the store, unless --store).")
@click.option("--store", "store", default=None, metavar="FILE", help="SQLite file [default: OUT/cgpreset.db].")
@concurrency_option
@pass_app
@click.pass_context
def demo(ctx: click.Context, app: App, out_dir: Path, store: str | None, concurrency: int | None) -> None:
    """Run the whole job against the embedded emulator: resolve the top-10, generate, health, run.

    Always uses the emulator (even with COINGLASS_API_KEY set) and ends with the commands that
    repeat each step by hand and the path of the HTML report (OUT/report.html, stating that its
    data is the emulator's). Running it again is incremental.

    \b
    Example:
        cgpreset demo && sqlite3 cgpreset-demo/cgpreset.db 'select coin, count(*) from funding group by 1'
    """
    from cgpreset.cli.present.health import health_summary, health_table
    from cgpreset.cli.present.run import run_summary, run_table
    from cgpreset.diagnose.demo import repeat_commands, run_demo

    app.override(concurrency=concurrency)
    demo_app = App(app.settings.model_copy(update={"api_key": None, "base_url": None, "ws_url": None,
                                                   "plan": "auto"}), emulator=True,
                   embedded_note="demo: using the embedded CoinGlass emulator (always, even with a key set)")
    ctx.call_on_close(demo_app.close)
    location = store_location(store) if store is not None else out_dir / "cgpreset.db"
    if not isinstance(location, Path):  # a URL: its repeat-by-hand lines would print it
        raise ConfigError(f"demo --store {display(location)}: the demo's store is an SQLite file, not a URL")
    configs_dir, store_path = out_dir / "configs", location
    report_path = out_dir / "report.html"
    check_output(report_path, "the report", store=store_path, new_folder=True)  # demo makes --out
    result = run_demo(demo_app.client, configs_dir=configs_dir, store_path=store_path,
                      concurrency=app.settings.concurrency, report_path=report_path)
    changed = sum(1 for c in result.generated.changes if c.status != "unchanged")
    click.echo(f"generated {len(result.generated.rendered)} configs in {configs_dir.as_posix()} "
               f"({changed} files changed)")
    click.echo("\nhealth (4 shots per coin + ETF):")
    print_tables(health_table(result.health))
    click.echo("\n".join(health_summary(result.health)))
    click.echo(f"\nrun-preset into {store_path.as_posix()}:")
    print_tables(run_table(result.run))
    click.echo(run_summary(result.run))
    click.echo("\nrepeat by hand (on the embedded emulator; with your key, leave out --emulator and use "
               "another --out and --store):")
    for line in repeat_commands(configs_dir, store_path, report_path):
        click.echo(f"  {line}")
    if result.report is not None:
        r = result.report
        click.echo(f"\nreport ({r.charts} charts, {r.failed} failed, {r.empty} empty; source: the emulator): "
                   f"{r.path.as_posix()}")
    _exit(result.exit_code)
