"""A child process that writes pages to a store, for the conformance suite's kill and concurrency tests.

    python -m tests.store_worker LOCATION SERIES FIRST_PAGE PAGES [ROWS_PER_PAGE]

Writes PAGES pages of ROWS_PER_PAGE hourly bars of SERIES (open interest of coin SERIES), page p
holding bars (FIRST_PAGE + p) * ROWS ... and moving the cursor to its last bar; prints
`page N` after each commit (flushed), so a parent knows what is certainly stored.
"""

from __future__ import annotations

import sys

from cgpreset.store import open_store
from cgpreset.store.base import Page, SeriesRef

H = 3_600_000


def page_rows(first: int, rows: int) -> list[tuple[int, float, float, float, float, int]]:
    """Bars of one page: value = the bar's index, so that any two writers agree on every row."""
    return [((first + i) * H, float(first + i), float(first + i) + 2, float(first + i) - 1, float(first + i) + 1, 1)
            for i in range(rows)]


def main(argv: list[str]) -> int:
    location, series, first_page, pages = argv[0], argv[1], int(argv[2]), int(argv[3])
    rows = int(argv[4]) if len(argv) > 4 else 1000
    ref = SeriesRef(f"open_interest/{series}/all/1h", "open_interest", series, None, None, "1h", "{}")
    with open_store(location) as store:
        for p in range(first_page, first_page + pages):
            bars = page_rows(p * rows, rows)
            store.write(Page(ref, bars, closed_upto=bars[-1][0]))
            print(f"page {p}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
