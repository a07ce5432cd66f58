"""`cgpreset doctor --probe`'s table: per catalogue endpoint, the outcome, rows, latency and the fields as
served (pure: no I/O)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from cgpreset.diagnose.probe import ProbeResult


def probe_table(results: list[ProbeResult]) -> Table:
    from rich import box
    from rich.table import Table

    from cgpreset.cli.present.text import droppable
    from cgpreset.diagnose.probe import describe_fields

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("endpoint", "outcome", "rows", "latency", "fields as served (JSON types)"):
        table.add_column(name, justify="right" if name in ("rows", "latency") else "left", overflow="fold")
    for r in results:
        rows = r.inspection.rows if r.inspection is not None else None
        detail = r.reason if r.outcome not in ("match",) and r.reason else describe_fields(r)
        table.add_row(r.endpoint.path, r.outcome, "-" if rows is None else str(rows),
                      "-" if r.latency_ms is None else f"{r.latency_ms:.0f} ms", detail)
    return droppable(table, "latency", "rows")
