"""`cgpreset runs` and `cgpreset cursors`: the store's run history and each series' cursor, without SQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cgpreset.cli.app import App, CgPresetGroup, pass_app, print_tables
from cgpreset.errors import ConfigError, UsageError, did_you_mean
from cgpreset.store import Store, open_store
from cgpreset.store.dsn import display, store_location

_STORE_HELP = "SQLite file or postgresql:// URL [default: CGPRESET_STORE or ./cgpreset.db]."
store_option = click.option("--store", "store", default=None, metavar="STORE", help=_STORE_HELP)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable document on stdout.")


def _open(app: App, store: str | None, *, readonly: bool) -> tuple[Store, str]:
    """The store named by --store (or the setting), and how messages name it. A missing SQLite
    file is one line, never an empty store created by a read."""
    location = store_location(store if store is not None else app.settings.store)
    name = display(location)
    if isinstance(location, Path) and not location.exists():
        raise ConfigError(f"{name}: no such store (no run has written it yet)")
    return open_store(location, readonly=readonly), name


def _confirm(yes: bool, question: str, refused: str) -> None:
    """Ask `question` on stderr unless `yes`; anything but yes (an empty stdin too) is UsageError(refused)."""
    if yes:
        return
    try:
        confirmed = click.confirm(question, default=False, err=True)
    except click.Abort:
        confirmed = False
    if not confirmed:
        raise UsageError(refused)


def _echo_json(doc: dict[str, Any]) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


def _listing(app: App, store: str | None, as_json: bool, read: Callable[[Store], Any],
             to_json: Callable[..., dict[str, Any]], to_table: Callable[[Any], Any], what: str) -> None:
    """Read one listing from the store (read-only), then print it as JSON, a table, or 'no WHAT'."""
    st, name = _open(app, store, readonly=True)
    with st:
        rows = read(st)
    if as_json:
        _echo_json(to_json(rows, store=name))
    elif not rows:
        click.echo(f"no {what} in {name}")
    else:
        print_tables(to_table(rows))


@click.group("runs", cls=CgPresetGroup, invoke_without_command=True)
@json_option
@store_option
@pass_app
@click.pass_context
def runs_cmd(ctx: click.Context, app: App, as_json: bool, store: str | None) -> None:
    """List past run-preset runs: id, status, start, duration, exit code, requests, rate-limit
    answers (429s) and the outcomes of their series. Reads only.

    \b
    Examples:
        cgpreset runs
        cgpreset runs --json --store postgresql://cg@db/cgpreset
        cgpreset runs show 12
    """
    from cgpreset.cli.present.history import runs_json, runs_table

    if ctx.invoked_subcommand is not None:
        ctx.meta["ops.store"], ctx.meta["ops.json"] = store, as_json
        return
    _listing(app, store, as_json, lambda st: st.runs(), runs_json, runs_table, "runs")


@runs_cmd.command("show")
@click.argument("run_id", metavar="ID", type=click.IntRange(min=1))
@json_option
@store_option
@pass_app
@click.pass_context
def runs_show_cmd(ctx: click.Context, app: App, run_id: int, as_json: bool, store: str | None) -> None:
    """One run's detail: totals, then each series' outcome, rows, new rows and why it is not ok.

    \b
    Example:
        cgpreset runs show 12 --json
    """
    from cgpreset.cli.present.history import run_detail_json, run_detail_lines, run_detail_table

    store = store if store is not None else ctx.meta.get("ops.store")
    as_json = as_json or bool(ctx.meta.get("ops.json"))
    st, name = _open(app, store, readonly=True)
    with st:
        rows = st.runs()
    row = next((r for r in rows if int(r["id"]) == run_id), None)
    if row is None:
        last = f" (runs 1 to {max(int(r['id']) for r in rows)})" if rows else " (it has no runs)"
        raise UsageError(f"{name}: no run {run_id}{last}")
    if as_json:
        _echo_json(run_detail_json(row, store=name))
        return
    click.echo("\n".join(run_detail_lines(row)))
    if row.get("outcomes"):
        print_tables(run_detail_table(row))


@click.group("cursors", cls=CgPresetGroup, invoke_without_command=True)
@json_option
@store_option
@pass_app
@click.pass_context
def cursors_cmd(ctx: click.Context, app: App, as_json: bool, store: str | None) -> None:
    """List each series' cursor (its last closed bar), the earliest bar stored, the holes the API
    answered without (a known hole, answered short on 3 runs in a row, is no longer asked for) and
    whether the series is retired (no config produces it: out of the analyst views). Reads only.

    \b
    Examples:
        cgpreset cursors
        cgpreset cursors reset 'funding/SOL/*' --yes
        cgpreset cursors prune --yes
    """
    from cgpreset.cli.present.history import cursors_json, cursors_table

    if ctx.invoked_subcommand is not None:
        ctx.meta["ops.store"] = store
        return
    def read(st: Store) -> dict[str, Any]:
        held = st.coverage()
        return {k: (c, held.get(k)) for k, c in st.positions().items()}

    _listing(app, store, as_json, read, cursors_json, cursors_table, "cursors")


@cursors_cmd.command("reset")
@click.argument("pattern")
@click.option("--yes", "-y", is_flag=True, help="Reset without asking.")
@store_option
@pass_app
@click.pass_context
def cursors_reset_cmd(ctx: click.Context, app: App, pattern: str, yes: bool, store: str | None) -> None:
    """Forget the cursors and coverage of the series matching PATTERN (a series key, or a shell
    pattern such as `funding/*` or `*/SOL/*`): their next run fetches their whole range again, known
    holes included. Stored rows stay. Asks first unless --yes.

    \b
    Example:
        cgpreset cursors reset 'open_interest/BTC/*' --yes
    """
    from cgpreset.cli.present.history import match_series

    store = store if store is not None else ctx.meta.get("ops.store")
    st, name = _open(app, store, readonly=False)
    with st:
        keys = [k for k, c in st.positions().items() if c.last_closed is not None]
        matched = match_series(keys, pattern)
        if not matched:
            raise UsageError(f"{name}: no series with a cursor matches {pattern!r}{did_you_mean(pattern, keys)}")
        for key in matched:
            click.echo(key, err=True)
        _confirm(yes, f"Reset {len(matched)} cursor{'s' if len(matched) != 1 else ''} in {name}?",
                 "cursors reset not confirmed: nothing changed (pass --yes to reset without asking)")
        for key in matched:
            st.reset_cursor(key)
    click.echo(f"reset {len(matched)} cursor{'s' if len(matched) != 1 else ''} in {name}; "
               "the next run backfills those series")


@cursors_cmd.command("prune")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@store_option
@pass_app
@click.pass_context
def cursors_prune_cmd(ctx: click.Context, app: App, yes: bool, store: str | None) -> None:
    """Delete the retired series (no config produces them any more, e.g. after 1h -> 4h) and all
    their rows. Lists them and asks first unless --yes. Until then their rows stay in the tables,
    out of the analyst views.

    \b
    Example:
        cgpreset cursors prune --yes
    """
    store = store if store is not None else ctx.meta.get("ops.store")
    st, name = _open(app, store, readonly=False)
    with st:
        retired = sorted(k for k, c in st.positions().items() if c.retired_at is not None)
        if not retired:
            click.echo(f"no retired series in {name}")
            return
        for key in retired:
            click.echo(key, err=True)
        _confirm(yes, f"Delete {len(retired)} retired series and all their rows from {name}?",
                 "cursors prune not confirmed: nothing deleted (pass --yes to delete without asking)")
        rows = st.prune(retired)
    click.echo(f"deleted {len(retired)} retired series ({rows} rows) from {name}")
