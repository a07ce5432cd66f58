"""Plain text for every table: render without terminal codes, fit a narrow terminal by dropping the
columns each table marks droppable, and the short ages and times the tables show (pure: no I/O)."""

from __future__ import annotations

import io
import weakref
from datetime import datetime, timezone

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text


def format_age(seconds: float | None) -> str:
    """A short human age: 45s, 12m, 3h 05m, 2d 04h."""
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def format_time(ms: int | None) -> str:
    """An instant as `2026-12-02 15:04Z` (UTC, minutes), or `-`."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%MZ")


def render_text(*renderables: RenderableType | str, width: int = 200) -> str:
    """Plain text (no colours, no terminal codes, no trailing blanks): what non-TTY stdout and tests see."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False, no_color=True,
                      highlight=False, emoji=False, soft_wrap=False)
    for r in renderables:
        fit(r, console)
        console.print(r)
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())


#: Columns each table may lose, first to last, when it does not fit the width without splitting words.
_DROPPABLE: weakref.WeakKeyDictionary[Table, tuple[str, ...]] = weakref.WeakKeyDictionary()


def droppable(table: Table, *headers: str) -> Table:
    """Mark columns (by header) that may go, first to last, so the table fits a narrow terminal."""
    _DROPPABLE[table] = headers
    return table


def fit(table: RenderableType | str, console: Console) -> None:
    """Drop the table's droppable columns, one at a time, until it renders at the console's width
    with no word split across lines (checked on the rendered text: rich's own collapse may fold
    any column once the unwrappable ones are wide)."""
    if not isinstance(table, Table):
        return
    for header in _DROPPABLE.get(table, ()):
        if not _splits_words(table, console.width):
            return
        table.columns[:] = [c for c in table.columns if c.header != header]
        for i, column in enumerate(table.columns):
            column._index = i  # rich pads the first and last column by their index


def _splits_words(table: Table, width: int) -> bool:
    words = {w for column in table.columns for cell in (column.header, *column.cells) for w in _plain(cell).split()}
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, no_color=True, highlight=False, emoji=False).print(table)
    shown = {w for w in buf.getvalue().split() if w.strip("─━═-")}
    headers = {w for column in table.columns for w in _plain(column.header).split()}
    return bool(shown - words) or not headers <= shown  # a word cut, or a column squeezed out of sight


def _plain(cell: object) -> str:
    if isinstance(cell, Text):
        return cell.plain
    return Text.from_markup(cell).plain if isinstance(cell, str) else ""
