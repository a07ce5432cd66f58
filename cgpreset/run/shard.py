"""`run-preset --shard I/N`: a deterministic split of a run's series over N processes (pure: no I/O).

Every series lands in exactly one shard, on every machine and every run of the same configs: the
series are ordered by (interval, layer, a SHA-256 of the series id) and dealt round-robin, so each
shard gets an even share of every kind of series (the heavy backfills too), and the series that
several configs share (the ETF flows) is one series, in one shard. Python's `hash()` is salted
per process, so it is never used here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cgpreset.errors import UsageError
from cgpreset.plans import interval_ms
from cgpreset.run.series import Series

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (0-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(value: str, *, source: str = "--shard") -> Shard:
    """`I/N` with 0 <= I < N; anything else is a UsageError naming `source`."""
    m = _SHARD.match(value)
    if not m:
        raise UsageError(f"{source}: {value!r} is not I/N (e.g. 0/4: the first of 4 shards)")
    return make_shard(int(m.group(1)), int(m.group(2)), source=source)


def make_shard(index: int, count: int, *, source: str = "--shard") -> Shard:
    if count < 1:
        raise UsageError(f"{source}: the number of shards must be at least 1, not {count}")
    if not 0 <= index < count:
        raise UsageError(f"{source}: shard index {index} is not in 0..{count - 1}")
    return Shard(index, count)


def stable_hash(text: str) -> int:
    """The same number for the same text on every machine and in every process."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def shard_series(series: Sequence[Series], shard: Shard | None) -> list[Series]:
    """The series of `shard`, in their original (report) order; all of them without a shard."""
    if shard is None or shard.count == 1:
        return list(series)
    def key(i: int) -> tuple[int, str, int, str]:
        s = series[i]
        return (_bar_ms(s.interval), s.layer, stable_hash(s.id), repr(s.request_key))

    dealt = sorted(range(len(series)), key=key)
    mine = {i for n, i in enumerate(dealt) if n % shard.count == shard.index}
    return [s for i, s in enumerate(series) if i in mine]


def _bar_ms(interval: str) -> int:
    try:
        return interval_ms(interval)
    except ValueError:  # not a bar interval (a snapshot's range): orders after every bar
        return 1 << 62
