"""`cgpreset export`: one analyst view as CSV, JSON Lines or Parquet, streamed batch by batch.

Rows are read in `fetchmany` batches and written as they come (Parquet: one row group per batch
through pyarrow's ParquetWriter), so memory stays flat however long the window. A file output is
written through cgpreset._io's one writer: beside its target, renamed into place only when
complete (an error leaves no half file), never through a symbolic link.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Collection, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cgpreset._io import atomic_output
from cgpreset.analyst.views import Selection, read_view, views
from cgpreset.errors import UsageError

FORMATS = ("csv", "jsonl", "parquet")


def _require_pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UsageError("--format parquet needs pyarrow: pip install 'cgpreset[parquet]'") from None
    return pyarrow


def _text(value: Any) -> str:
    """One CSV field: empty for NULL, true/false for booleans, floats in their shortest exact form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _json_value(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_csv(columns: Sequence[str], batches: Iterator[list[tuple[Any, ...]]], out: IO[bytes]) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        n = 0
        for batch in batches:
            writer.writerows([_text(v) for v in row] for row in batch)
            n += len(batch)
        text.flush()
        return n
    finally:
        text.detach()  # leave `out` open: it may be stdout


def write_jsonl(columns: Sequence[str], batches: Iterator[list[tuple[Any, ...]]], out: IO[bytes]) -> int:
    n = 0
    for batch in batches:
        lines = [json.dumps({c: _json_value(v) for c, v in zip(columns, row, strict=True)},
                            separators=(",", ":"), allow_nan=False) for row in batch]
        out.write(("\n".join(lines) + "\n").encode())
        n += len(batch)
    out.flush()
    return n


def arrow_type(column: str, sample: Sequence[Any] = (), text: Collection[str] = ()) -> Any:
    """The Parquet type of a view column: time as a UTC ms timestamp, closed as bool, the view's
    `text` columns (or one whose values are text) as strings, every other column float64."""
    pa = _require_pyarrow()
    if column == "time":
        return pa.timestamp("ms", tz="UTC")
    if column == "closed":
        return pa.bool_()
    if column in text or any(isinstance(v, str) for v in sample):
        return pa.string()
    return pa.float64()


def write_parquet(columns: Sequence[str], batches: Iterator[list[tuple[Any, ...]]], out: IO[bytes],
                  text: Collection[str] = ()) -> int:
    pa = _require_pyarrow()
    import pyarrow.parquet as pq

    first = next(batches, [])
    schema = pa.schema([(c, arrow_type(c, [r[i] for r in first[:100]], text)) for i, c in enumerate(columns)])
    n = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:  # leaves `out` open
        for batch in _chain(first, batches):
            arrays = [pa.array([r[i] for r in batch], type=schema.field(i).type) for i in range(len(columns))]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            n += len(batch)
    return n


def _chain(first: list[tuple[Any, ...]], rest: Iterator[list[tuple[Any, ...]]]) -> Iterator[list[tuple[Any, ...]]]:
    if first:
        yield first
    yield from rest


@dataclass(frozen=True)
class Exported:
    """What `export_view` wrote: the row count, and the note for a view the store does not have yet."""

    rows: int
    missing: str | None = None


def export_view(conn: Any, view: str, sel: Selection, fmt: str, *, output: Path | None,
                stdout: IO[bytes] | None = None) -> Exported:
    """Write the view's selected rows to `output` (atomically) or `stdout`.

    A view the store does not have yet is written empty (the CSV header, a Parquet schema) and
    says so in `missing`.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        _require_pyarrow()
        if output is None:
            raise UsageError("--format parquet needs --output FILE (Parquet is not written to stdout)")
    columns, batches, missing = read_view(conn, view, sel)
    text = views()[view].text
    with closing(batches):  # the cursor closes here, before its connection does
        if output is None:
            assert stdout is not None
            n = write_csv(columns, batches, stdout) if fmt == "csv" else write_jsonl(columns, batches, stdout)
        else:
            n = _to_file(columns, batches, fmt, output, text)
    return Exported(n, missing)


def _to_file(columns: Sequence[str], batches: Iterator[list[tuple[Any, ...]]], fmt: str, output: Path,
             text: Collection[str]) -> int:
    with atomic_output(output) as fh:
        if fmt == "parquet":
            return write_parquet(columns, batches, fh, text)
        return write_csv(columns, batches, fh) if fmt == "csv" else write_jsonl(columns, batches, fh)
