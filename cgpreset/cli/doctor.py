"""`cgpreset doctor`: settings in effect, plan, rate budget and one cheap call's latency."""

from __future__ import annotations

import json

import click

from ..doctor import run_doctor
from . import App, cli, pass_app


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@pass_app
def doctor(app: App, as_json: bool) -> None:
    """Show the settings in effect and check that the API answers.

    Exit 3 if the API refuses the key or cannot be reached.

    \b
    Example:
        COINGLASS_API_KEY=... cgpreset doctor
    """
    target = app.target
    report = run_doctor(app.client, app.settings, ws_url=target.ws_url, embedded=target.embedded)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        for name, value in report.lines():
            click.echo(f"{name:<18} {value}")
    if report.error is not None:
        raise report.error
