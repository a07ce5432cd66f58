"""cgpreset: clone a production CoinGlass v4 preset to a watchlist, run it, health-check it, stream it."""

from __future__ import annotations

__version__ = "0.1.0"
