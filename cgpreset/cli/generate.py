"""`cgpreset resolve`, `generate`, `validate` and `schema`: clone the preset to the watchlist."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cgpreset._io import DEFAULT_PRESET, DEFAULT_TEMPLATES, DEFAULT_WATCHLIST
from cgpreset.cli.app import App, pass_app, print_tables
from cgpreset.errors import ConfigError, FindingsError
from cgpreset.generate.writer import unified_diff

if TYPE_CHECKING:  # the commands import their machinery when they run (fast --help, see cli/__init__.py)
    from cgpreset.generate.pipeline import GenerateResult, ResolveResult
    from cgpreset.models.preset import InputFile

_PATH = click.Path(path_type=Path)
_PLANS = click.Choice(["auto", "hobbyist", "startup", "standard", "professional"])

preset_option = click.option(
    "--preset", "preset_path", type=_PATH, default=None,
    help=f"Preset file [default: {DEFAULT_PRESET}, else the copy shipped with cgpreset].",
)
watchlist_option = click.option(
    "--watchlist", "watchlist_path", type=_PATH, default=None,
    help=f"Watchlist file [default: {DEFAULT_WATCHLIST}, else the shipped copy].",
)
offline_option = click.option(
    "--offline", is_flag=True, help="No API calls: use the snapshot (default DIR/.cgpreset/discovery.json)."
)
snapshot_option = click.option(
    "--snapshot", type=_PATH, default=None, help="Resolve against this discovery snapshot (implies --offline)."
)
plan_option = click.option(
    "--plan", type=_PLANS, default="auto", show_default=True,
    help="Plan to check the preset against; auto = the key's plan (or the snapshot's).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")


def _dump(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False))


def _located(given: Path | None, default: Path) -> InputFile:
    """The input to use; a shipped copy standing in for a missing file is said on stderr."""
    from cgpreset.models.preset import locate

    found = locate(given, default)
    if found.note:
        click.echo(f"note: {found.note}", err=True)
    return found


def _inputs(preset_path: Path | None, watchlist_path: Path | None) -> Any:
    from cgpreset.generate.pipeline import load_inputs

    return load_inputs(_located(preset_path, DEFAULT_PRESET), _located(watchlist_path, DEFAULT_WATCHLIST))


def _discovery_source(app: App, *, online: bool) -> str | None:
    """Whom an online discovery asks, as the snapshot and the configs' provenance record it (`emulator`
    or `api:<host>`); None offline. Online without a key (and without --emulator) is exit 3 here,
    before anything is written."""
    if not online:
        return None
    from cgpreset.run.source import discovery_source

    app.check_target()
    return discovery_source(app.settings, embedded=app.emulator)


def _print_table(result: ResolveResult) -> None:
    from cgpreset.cli.present.resolve import resolve_table

    snap = result.source
    print_tables(resolve_table(result.resolution), width=160)
    click.echo(
        f"{len(result.resolution.coins)} coin(s), {len(result.resolution.dropped)} dropped; "
        f"plan {result.plan.plan.value} ({result.plan.source}); snapshot {snap.origin} "
        f"{snap.snapshot.meta.fetched_at} sha256:{snap.snapshot.sha256()[:12]} "
        f"source {snap.snapshot.meta.source or 'not recorded'}",
        err=True,
    )
    for note in result.resolution.notes:
        click.echo(f"note: {note}", err=True)


@click.command()
@preset_option
@watchlist_option
@offline_option
@snapshot_option
@click.option("--out", "out_dir", type=_PATH, default=None, metavar="DIR",
              help="Output directory whose snapshot --offline reads.")
@plan_option
@json_option
@pass_app
def resolve(
    app: App,
    preset_path: Path | None,
    watchlist_path: Path | None,
    offline: bool,
    snapshot: Path | None,
    out_dir: Path | None,
    plan: str,
    as_json: bool,
) -> None:
    """Show what the preset resolves to for every watchlist coin, and why.

    Dropped coins (excluded) and layers (nothing listed) are shown with their reason and the
    exit code stays 0; a coin listed in the watchlist that CoinGlass does not know exits 2.

    \b
    Example:
        cgpreset resolve --offline --snapshot deploy/.cgpreset/discovery.json
    """
    from cgpreset.generate.pipeline import run_resolve

    inputs = _inputs(preset_path, watchlist_path)
    source = _discovery_source(app, online=not offline and snapshot is None)
    result = run_resolve(
        inputs, client=lambda: app.client, offline=offline, snapshot=snapshot, out_dir=out_dir, plan=plan,
        source=source,
    )
    if as_json:
        _dump({"schema": "cgpreset.resolve/1", **result.as_dict()})
    else:
        _print_table(result)


def diff_prefix(out_dir: Path) -> str:
    """Where DIR is from the root of the git repository holding it (`deploy`), else from the working
    directory: the --diff paths start there, so `git apply` takes the diff from the repo's root."""
    import os

    target = Path(os.path.abspath(out_dir))
    for folder in (target, *target.parents):
        if (folder / ".git").exists():
            return target.relative_to(folder).as_posix()
    return Path(os.path.relpath(target)).as_posix()


def _report(result: GenerateResult, *, diff: bool, as_json: bool) -> None:
    if as_json:
        _dump({"schema": "cgpreset.generate/1", **result.as_dict()})
    else:
        for change in result.changes:
            if change.status != "unchanged":
                click.echo(f"{change.status:<9} {result.out_dir / change.path}")
    if diff:
        from dataclasses import replace

        prefix = diff_prefix(result.out_dir)
        for change in result.changes:
            text = unified_diff(replace(change, path=f"{prefix}/{change.path}" if prefix != "." else change.path))
            if text:
                click.echo(text, nl=False)
    res = result.resolved.resolution
    for note in res.notes:
        click.echo(f"note: {note}", err=True)
    for d in res.dropped:
        click.echo(f"dropped {d.requested}: {d.reason}", err=True)
    for c in res.coins:
        for layer, why in sorted(c.dropped_layers.items()):
            click.echo(f"{c.coin}: {layer} layer dropped: {why}", err=True)
    stale = [c.path for c in result.changes if c.status == "stale"]
    if stale and not result.check:
        click.echo(f"stale (generated files this watchlist no longer produces; --prune removes them): "
                   f"{', '.join(stale)}", err=True)
    verb = "would change" if result.check else "written"
    count = len(result.drift) if result.check else result.written
    click.echo(f"{len(result.rendered)} config(s) for {result.out_dir}; {count} file(s) {verb}", err=True)


@click.command()
@preset_option
@watchlist_option
@click.option("--out", "out_dir", type=_PATH, required=True, metavar="DIR", help="Directory for <coin>.yaml files.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file would change.")
@click.option("--diff", is_flag=True, help="Print a unified diff of every change.")
@click.option("--prune", is_flag=True, help="Delete generated configs of coins no longer in the watchlist.")
@offline_option
@snapshot_option
@click.option(
    "--templates", "templates_dir", type=_PATH, default=None, metavar="DIR",
    help=f"Template directory with coin.yaml.j2 [default: {DEFAULT_TEMPLATES}, else the shipped copy].",
)
@plan_option
@click.option("--strict", is_flag=True, help="Exit 1 (and write nothing) if any coin or layer was dropped.")
@click.option("--replace-preset", is_flag=True,
              help="Overwrite configs in DIR that were generated from another preset (refused otherwise).")
@click.option("--kubernetes", is_flag=True,
              help="Also write a kustomize base to DIR/kubernetes/ (CronJob of Indexed shards, stream Deployment, "
                   "NetworkPolicy, PrometheusRule, PodMonitor, Grafana dashboard). Once it exists, every generate "
                   "(and --check, --diff) keeps it in step, with the settings it records.")
@click.option("--shards", type=click.IntRange(1, 64), default=None, metavar="N",
              help="The base's run-preset as N shards of one Indexed Job [default: the recorded count, else 1].")
@click.option("--schedule", default=None, metavar="CRON",
              help="The base's CronJob schedule (UTC), or `auto`: a few minutes after each bar of the finest "
                   "interval closes [default: the recorded one, else auto].")
@click.option("--image", default=None, metavar="REF",
              help="The base's image with a version tag or digest, or `auto`: cgpreset:<this cgpreset's version> "
                   "[default: the recorded one, else auto].")
@click.option("--pushgateway", "pushgateway", default=None, metavar="URL",
              help="The Pushgateway the base's runs push their metrics to, or `off` (then no alert watches the "
                   "runs) [default: the recorded one, else http://prometheus-pushgateway.monitoring:9091].")
@click.option("--store-port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="The PostgreSQL port the base's NetworkPolicy lets the pods reach [default: recorded, else 5432].")
@click.option("--monitoring-namespace", default=None, metavar="NS",
              help="The namespace of Prometheus, the only one the base's NetworkPolicy lets scrape the stream "
                   "[default: recorded, else monitoring].")
@json_option
@pass_app
def generate(
    app: App,
    preset_path: Path | None,
    watchlist_path: Path | None,
    out_dir: Path,
    check: bool,
    diff: bool,
    prune: bool,
    offline: bool,
    snapshot: Path | None,
    templates_dir: Path | None,
    plan: str,
    strict: bool,
    replace_preset: bool,
    kubernetes: bool,
    shards: int | None,
    schedule: str | None,
    image: str | None,
    pushgateway: str | None,
    store_port: int | None,
    monitoring_namespace: str | None,
    as_json: bool,
) -> None:
    """Write one validated config per watchlist coin into DIR (only files whose bytes change).

    Everything is rendered and validated first: bad input (including a watchlist coin that
    CoinGlass does not know) exits 2 and leaves DIR untouched, as do configs in DIR generated
    from another preset (unless --replace-preset). With --check nothing is written and drift
    exits 1. Once DIR/kubernetes/ exists, the base is rebuilt (and checked) with the configs, from
    the settings it records in cgpreset-base.yaml; --shards, --schedule, --image, --pushgateway,
    --store-port and --monitoring-namespace change them.

    \b
    Examples:
        cgpreset generate --out deploy/
        cgpreset generate --out deploy/ --offline --check --diff
        cgpreset generate --out deploy/ --kubernetes --shards 4
        cgpreset generate --out deploy/ --image registry.example.com/cgpreset:0.1.0
    """
    from cgpreset.generate.kube_settings import settings_for
    from cgpreset.generate.pipeline import open_templates, run_generate

    kube = None
    base = settings_for(out_dir, requested=kubernetes, changes={
        "shards": shards, "schedule": schedule, "image": image, "pushgateway": pushgateway,
        "store_port": store_port, "monitoring_namespace": monitoring_namespace})
    if base is not None:  # asked for, or DIR/kubernetes/ exists: the base is rebuilt with the configs
        from cgpreset import __version__
        from cgpreset.generate.kube import KubeOptions
        from cgpreset.run.series import first_run_requests

        kube = KubeOptions(estimate=first_run_requests, settings=base, version=__version__)

    inputs = _inputs(preset_path, watchlist_path)
    templates = open_templates(_located(templates_dir, DEFAULT_TEMPLATES))
    source = _discovery_source(app, online=not offline and snapshot is None)
    from cgpreset.cli.progress import progress_on_first_use

    with progress_on_first_use("generate", lambda: app.client) as client:
        result = run_generate(
            inputs, templates, out_dir=out_dir, client=client, offline=offline, snapshot=snapshot,
            plan=plan, check=check, prune=prune, strict=strict, replace_preset=replace_preset, kubernetes=kube,
            source=source,
        )
    _report(result, diff=diff, as_json=as_json)
    if check and result.drift:
        listing = ", ".join(f"{c.path} ({c.status})" for c in result.drift)
        fix = fix_command(click.get_current_context(), app, prune=any(c.status == "stale" for c in result.drift))
        raise FindingsError(f"{len(result.drift)} file(s) out of date in {out_dir}: {listing}; to write them, "
                            f"run: {fix}")


def fix_command(ctx: click.Context, app: App, *, prune: bool) -> str:
    """The `cgpreset generate` that writes what --check found out of date: the options given, without
    --check, --diff and --json (plus --prune when generated files are stale)."""
    import shlex

    argv = ["cgpreset", *(["--emulator"] if app.emulator else []), "generate"]
    for param in ctx.command.params:
        name = param.name or ""
        if not isinstance(param, click.Option) or name in ("check", "diff", "as_json") or name not in ctx.params \
                or ctx.get_parameter_source(name) != click.core.ParameterSource.COMMANDLINE:
            continue
        flag = max(param.opts, key=len)
        value = ctx.params[name]
        argv += [flag] if param.is_flag else [flag, value.as_posix() if isinstance(value, Path) else str(value)]
    if prune and "--prune" not in argv:
        argv.append("--prune")
    return shlex.join(argv)


def _exchanges_beside() -> Callable[[Path], Collection[str]]:
    """The CoinGlass exchange names a config is checked against: those of the discovery snapshot
    in its folder's .cgpreset/ (what generate resolved it from), else the known ones."""
    from cgpreset.api.catalogue import KNOWN_EXCHANGES
    from cgpreset.generate.discovery import load_snapshot, snapshot_path

    found: dict[Path, Collection[str]] = {}

    def exchanges(config: Path) -> Collection[str]:
        path = snapshot_path(config.parent)
        if path not in found:
            found[path] = frozenset(load_snapshot(path).pairs) if path.is_file() else frozenset(KNOWN_EXCHANGES)
        return found[path]

    return exchanges


@click.command()
@click.argument("paths", nargs=-1, required=True, type=_PATH)
@json_option
def validate(paths: tuple[Path, ...], as_json: bool) -> None:
    """Check config files offline: schema and plan feasibility, every problem on its own line.

    Directories are expanded to their *.yaml files. Exchange names are checked against the
    discovery snapshot beside the configs (DIR/.cgpreset/discovery.json), else against the
    exchanges CoinGlass documents. Exit 2 if anything is wrong.

    \b
    Example:
        cgpreset validate deploy/
    """
    from cgpreset.models.schema import validate_paths

    files, problems = validate_paths(list(paths), exchanges=_exchanges_beside())
    bad = {line.split(":", 1)[0] for line in problems}
    if as_json:
        _dump({"schema": "cgpreset.validate/1", "ok": [str(f) for f in files if str(f) not in bad],
               "problems": problems})
    else:  # problems and ok lines both on stdout: they are the command's output; the verdict is on stderr
        for line in problems:
            click.echo(line)
        for f in files:
            if str(f) not in bad:
                click.echo(f"ok {f}")
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in {len(bad)} file(s)")


@click.command()
@json_option
def schema(as_json: bool) -> None:
    """Print the JSON Schema of a coin config (every object closed: unknown keys are errors), for
    the shipped layers and the working directory's own (layers/*.yaml).

    \b
    Example:
        cgpreset schema > coin-config.schema.json
    """
    from cgpreset import layers
    from cgpreset.models.schema import schema_text

    layers.use([layers.REPO_LAYERS])  # a repo's own layers complete in editors too
    if as_json:  # the JSON Schema inside a document of cgpreset's own kind, like every --json
        _dump({"schema": "cgpreset.schema/1", "coin_config": json.loads(schema_text())})
        return
    click.echo(schema_text(), nl=False)
