"""`cgpreset resolve`'s table: per watchlist coin, its rank, file, own pair, exchanges and notes, and the
coins dropped, with why (pure: no I/O). Columns follow the layers' kinds, never their names: the
pair is the coin's first pair layer, the exchanges those its coin-and-exchange-list layers kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cgpreset.layers import spec

if TYPE_CHECKING:
    from rich.table import Table

    from cgpreset.generate.resolver import CoinResolution, Resolution


def _pair_cell(c: CoinResolution) -> str:
    if c.pair_layer is not None:
        pair = c.layers[c.pair_layer]
        return f"{pair['exchange']} {pair['symbol']}" + (" (fallback)" if c.pair_fallback else "")
    return "dropped" if any(spec(n).kind == "pair" for n in c.dropped_layers) else "-"


def _exchanges_cell(c: CoinResolution) -> str:
    kept = [e for n, layer in c.layers.items() if spec(n).kind == "coin_exchanges" for e in layer["exchange_list"]]
    if kept:
        return ", ".join(dict.fromkeys(kept))
    return "dropped" if any(spec(n).kind == "coin_exchanges" for n in c.dropped_layers) else "-"


def resolve_table(resolution: Resolution) -> Table:
    """#, coin, file, pair, exchanges, notes; the file, rank and exchanges go first on a narrow terminal."""
    from rich import box
    from rich.table import Table

    from cgpreset.cli.present.text import droppable

    table = Table(box=box.SIMPLE, show_lines=False, expand=False)
    for name in ("#", "coin", "file", "pair", "exchanges", "notes"):
        table.add_column(name, overflow="fold")
    for c in resolution.coins:
        table.add_row(str(c.rank) if c.rank else "-", c.coin, c.filename, _pair_cell(c), _exchanges_cell(c),
                      "\n".join(n for n in c.notes if not n.startswith("watchlist:")) or "-")
    for d in resolution.dropped:
        table.add_row("-", d.requested, "-", "-", "-", f"dropped: {d.reason}")
    return droppable(table, "file", "#", "exchanges")
