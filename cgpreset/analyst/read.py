"""`cgpreset.read(store, "open_interest", coin="SOL")`: a view's rows for a notebook.

The rows are plain dicts (no extra dependency); `.to_pandas()`, `.to_polars()` and `.to_arrow()`
turn them into a frame when that library is installed, with `time` as a UTC timestamp.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from cgpreset.analyst.source import connect
from cgpreset.analyst.views import make_selection, read_view, views
from cgpreset.clock import WallClock, wall_ms
from cgpreset.errors import UsageError


class Rows(list[dict[str, Any]]):
    """A view's rows (dicts in column order), convertible to a data frame.

    `text`: the columns holding text; `missing`: why there are none, for a view the store lacks.
    """

    def __init__(self, columns: Sequence[str], rows: Sequence[dict[str, Any]] = (), *,
                 text: Collection[str] = (), missing: str | None = None) -> None:
        super().__init__(rows)
        self.columns = tuple(columns)
        self.text = frozenset(text)
        self.missing = missing

    def to_arrow(self) -> Any:
        """A pyarrow Table with the Parquet export's types."""
        try:
            import pyarrow as pa
        except ImportError:
            raise UsageError("to_arrow() needs pyarrow: pip install pyarrow") from None
        from cgpreset.analyst.export import arrow_type

        sample = self[:100]
        fields = [(c, arrow_type(c, [r[c] for r in sample], self.text)) for c in self.columns]
        return pa.table({c: pa.array([r[c] for r in self], type=t) for c, t in fields})

    def to_pandas(self) -> Any:
        """A pandas DataFrame (needs pandas); `time` is a UTC datetime."""
        try:
            import pandas as pd
        except ImportError:
            raise UsageError("to_pandas() needs pandas: pip install pandas") from None
        frame = pd.DataFrame.from_records(list(self), columns=list(self.columns))
        if "time" in frame:
            frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
        return frame

    def to_polars(self) -> Any:
        """A polars DataFrame (needs polars); `time` is Datetime("ms", "UTC")."""
        try:
            import polars as pl
        except ImportError:
            raise UsageError("to_polars() needs polars: pip install polars") from None
        frame = pl.DataFrame(list(self), schema=list(self.columns), orient="row", infer_schema_length=None)
        if "time" in frame.columns:
            frame = frame.with_columns(pl.from_epoch("time", time_unit="ms").dt.replace_time_zone("UTC"))
        return frame


def _when(value: str | int | datetime | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(int(value))


def read(store: Any, layer: str, *, coin: str | Sequence[str] | None = None,
         since: str | timedelta | None = None, start: str | int | datetime | None = None,
         end: str | int | datetime | None = None, closed_only: bool = False, clock: WallClock = wall_ms) -> Rows:
    """The rows of one analyst view (`layer`, any view of the active catalogue) of `store` (a path
    or a DB-API connection). A view the store does not have yet gives no rows and a warning.

    `coin`: one code or several; `since`: "30d" or a timedelta back from now; `start`/`end`: ms,
    ISO-8601 text or a datetime (end exclusive); `closed_only`: leave out still-forming bars;
    `clock`: now in ms (cgpreset/clock.py), what `since` and `closed_only` count from.
    """
    coins = [coin] if isinstance(coin, str) else list(coin or ())
    if isinstance(since, timedelta):
        since = f"{max(1, int(since.total_seconds() // 60))}m"
    sel = make_selection(coins=coins, since=since, start=_when(start), end=_when(end),
                         closed_only=closed_only, now_ms=clock())
    with connect(store) as conn:
        columns, batches, missing = read_view(conn, layer, sel)
        out = Rows(columns, text=views()[layer].text, missing=missing)
        for batch in batches:
            out.extend(dict(zip(columns, row, strict=True)) for row in batch)
    if missing is not None:
        warnings.warn(missing, stacklevel=2)
    return out
