"""`cgpreset layers`: the layer catalogue (shipped and a repo's own definitions), and one definition as written."""

from __future__ import annotations

import json
from typing import Any

import click

from cgpreset.cli.app import CgPresetGroup, print_tables
from cgpreset.errors import UsageError, did_you_mean

LAYERS_SCHEMA = "cgpreset.layers/1"


def _catalogue() -> Any:
    """The shipped layers plus the working directory's own (layers/*.yaml); a bad one is exit 2."""
    from cgpreset import layers

    return layers.use([layers.REPO_LAYERS])


def _describe(ls: Any) -> dict[str, Any]:
    return {
        "name": ls.id, "title": ls.title, "endpoint": ls.path, "kind": ls.kind, "history": ls.history,
        "min_plan": ls.min_plan.value, "interval_floor": ls.floor,
        "time": None if ls.time_field is None else {"field": ls.time_field, "unit": ls.time_unit},
        "fields": [{"name": f.name, "type": f.type, "unit": f.unit, "column": f.column} for f in ls.fields],
        "checks": list(ls.checks), "chart": ls.chart, "source": ls.source,
    }


@click.group("layers", cls=CgPresetGroup, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable document on stdout.")
@click.pass_context
def layers_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the layer catalogue: every CoinGlass time series a preset can run, with its endpoint,
    kind, minimum plan and fields; the shipped definitions and the working directory's own
    (layers/*.yaml: copy one with `cgpreset layers show NAME > layers/mine.yaml`, rename it).

    \b
    Examples:
        cgpreset layers
        cgpreset layers show basis > layers/my_basis.yaml
    """
    if ctx.invoked_subcommand is not None:
        return
    from cgpreset.cli.present.layers import layers_table

    cat = _catalogue()
    if as_json:
        click.echo(json.dumps({"schema": LAYERS_SCHEMA, "layers": [_describe(s) for s in cat.values()]},
                              indent=2, sort_keys=True))
        return
    print_tables(layers_table(cat.values()))


@layers_cmd.command("show")
@click.argument("name")
def layers_show_cmd(name: str) -> None:
    """Print one layer's definition as a file holds it (comments included): the form a repo's own
    layers/<name>.yaml takes.

    \b
    Example:
        cgpreset layers show basis > layers/my_basis.yaml
    """
    from pathlib import Path

    from cgpreset import layers
    from cgpreset._io import read_text

    if name in layers.shipped():  # without reading the repo's own: `show x > layers/y.yaml` made y empty already
        click.echo(read_text(layers.SHIPPED / f"{name}.yaml"), nl=False)
        return
    cat = _catalogue()
    if name not in cat:
        raise UsageError(f"{name} is not a layer{did_you_mean(name, cat)}; `cgpreset layers` lists them")
    click.echo(read_text(Path(cat[name].source)), nl=False)
