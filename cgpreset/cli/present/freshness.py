"""`cgpreset freshness`'s table: per series, its last closed bar, age against its limit, missing bars,
known holes and status (pure: no I/O)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from cgpreset.run.freshness import FreshnessReport


def freshness_table(report: FreshnessReport) -> Table:
    """coin, layer, interval, last closed bar, age / limit in bars, missing bars, known holes, status."""
    from rich import box
    from rich.table import Table

    from cgpreset.cli.present.text import droppable, format_time
    from cgpreset.run.freshness import FRESH, NEVER

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in (("coin", "left"), ("layer", "left"), ("interval", "left"), ("last bar (UTC)", "left"),
                          ("age/limit", "right"), ("missing", "right"), ("known holes", "right"),
                          ("status", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    styles = {FRESH: "green", NEVER: "red"}
    for f in report.series:
        age = "-" if f.age_bars is None else f"{f.age_bars:.1f}/{f.limit_bars:g}"
        table.add_row(f.series.coin, f.series.layer, f.series.interval, format_time(f.last_bar), age,
                      _count(f.missing_bars), _count(f.known_hole_bars),
                      f"[{styles.get(f.status, 'red')}]{f.status}[/]")
    return droppable(table, "interval", "known holes", "missing")


def _count(bars: int | None) -> str:
    return "-" if bars is None else str(bars)
