"""`cgpreset doctor`: settings in effect, plan, rate budget and one cheap call's latency;
with `--probe`, one small call per catalogue endpoint compared with what we expect."""

from __future__ import annotations

import json

import click

from cgpreset.cli.app import App, pass_app, print_tables
from cgpreset.errors import ExitCode, FindingsError


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--probe", is_flag=True,
              help="Also call every endpoint once: discovery's and each layer's, ./layers/*.yaml included "
                   "(BTC, Binance, 3 bars; 12 requests for the shipped layers) and compare the answers "
                   "with the definitions: run-preset's decoder, time unit, field spellings and types.")
@pass_app
def doctor(app: App, as_json: bool, probe: bool) -> None:
    """Show the settings in effect and check that the API answers.

    Exit 3 if the API refuses the key or cannot be reached; with --probe, exit 1 if an endpoint
    drifted from the catalogue (a field gone, a number that is not one, seconds for milliseconds)
    or answered empty.

    \b
    Examples:
        COINGLASS_API_KEY=... cgpreset doctor
        COINGLASS_API_KEY=... cgpreset doctor --probe --json > probe.json
    """
    from cgpreset import layers
    from cgpreset.diagnose.doctor import run_doctor
    from cgpreset.diagnose.probe import probe_exit_code, run_probe

    if probe:  # a repo's own layers (./layers/*.yaml) are probed beside the shipped ones
        layers.use([layers.REPO_LAYERS])
    target = app.target
    report = run_doctor(app.client, app.settings, ws_url=target.ws_url, embedded=target.embedded,
                        flags={name: "--" + name.replace("_", "-") for name in app.overrides})
    results = run_probe(app.client, app.client.plan()) if probe and report.error is None else []
    if as_json:
        doc = {"schema": "cgpreset.doctor/1", **report.as_dict()}
        if probe:
            doc["probe"] = [r.as_dict() for r in results]
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        for name, value in report.lines():
            click.echo(f"{name:<18} {value}")
        click.echo("\nsettings in effect:")
        for line in report.settings_lines():
            click.echo(f"  {line}")
        if results:
            click.echo()
            from cgpreset.cli.present.probe import probe_table

            print_tables(probe_table(results), width=160)
    if report.error is not None:
        raise report.error
    code = probe_exit_code(results)
    if code == ExitCode.API:
        raise next(r.error for r in results if r.error is not None)
    if code == ExitCode.FINDINGS:
        bad = [r for r in results if r.outcome not in ("match", "skipped")]
        raise FindingsError(f"probe: {len(bad)} of {len(results)} endpoints did not answer as the catalogue expects: "
                            + ", ".join(f"{r.endpoint.id} ({r.outcome})" for r in bad))
