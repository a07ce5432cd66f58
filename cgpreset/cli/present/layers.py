"""`cgpreset layers`' table: every layer of the catalogue with its endpoint, kind, plan, typed fields and
where its definition comes from (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from cgpreset.layers import LayerSpec


def layers_table(specs: Iterable[LayerSpec]) -> Table:
    """layer, endpoint, kind, plan, fields (with units), source; source and endpoint go first when narrow."""
    from rich import box
    from rich.table import Table

    from cgpreset.cli.present.text import droppable

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("layer", "endpoint", "kind", "plan", "fields", "source"):
        table.add_column(name, overflow="fold")
    for s in specs:
        fields = ", ".join(f"{c.name} ({c.unit})" if c.unit else c.name for c in s.columns)
        table.add_row(s.id, s.path, s.kind, f"{s.min_plan.value}+", fields,
                      "shipped" if s.shipped else s.source)
    return droppable(table, "source", "endpoint")
