"""Deterministic market series: a hash-based PRNG, so any bar can be computed on its own.

Nothing is stored: every value is a pure function of (seed, stream names, time). A value at a
bar boundary is the same on every call; only the still-forming bar moves as "now" moves.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from functools import lru_cache

from cgpreset.plans import DAY_MS, HOUR_MS, MINUTE_MS

_MASK = (1 << 64) - 1
_SCALE = 1.0 / float(1 << 64)

#: Octaves of the smooth noise used for levels: (knot spacing in ms, weight). The weights sum to 1.
_OCTAVES: tuple[tuple[int, float], ...] = (
    (21 * DAY_MS, 0.38),
    (3 * DAY_MS, 0.24),
    (8 * HOUR_MS, 0.17),
    (HOUR_MS, 0.11),
    (10 * MINUTE_MS, 0.07),
    (2 * MINUTE_MS, 0.03),
)


@lru_cache(maxsize=4096)
def stream_key(seed: int, *parts: object) -> int:
    """A 64-bit key naming one random stream, e.g. stream_key(7, "oi", "SOL")."""
    text = "|".join([str(seed), *map(str, parts)]).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def mix(x: int) -> int:
    """splitmix64's finaliser: a fast, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def unit(key: int, n: int) -> float:
    """A uniform number in [0, 1) for position n of stream `key`."""
    return mix(key ^ ((n * 0xD6E8FEB86659FD93) & _MASK)) * _SCALE


def signed(key: int, n: int) -> float:
    """A uniform number in [-1, 1)."""
    return 2.0 * unit(key, n) - 1.0


@lru_cache(maxsize=1 << 17)
def _knot(key: int, i: int) -> float:
    # Neighbouring bars share knots, across requests too: caching them halves the work.
    return 2.0 * mix(key ^ ((i * 0xD6E8FEB86659FD93) & _MASK)) * _SCALE - 1.0


def smooth(key: int, t: int, span: int) -> float:
    """Value noise in [-1, 1]: random knots every `span` ms, smoothstep between them."""
    i, frac = divmod(t, span)
    a = _knot(key, i)
    b = _knot(key, i + 1)
    s = frac / span
    s = s * s * (3.0 - 2.0 * s)
    return a + (b - a) * s


def level(key: int, t: int) -> float:
    """Multi-scale smooth noise in about [-1, 1]: slow drifts plus intraday wiggles."""
    total = 0.0
    for n, (span, weight) in enumerate(_OCTAVES):
        total += weight * smooth(key + n, t, span)
    return total


_TREND_MID_MS = 1725148800000  # 2024-09-01: the middle of the 2024 rise


def market_factor(seed: int, t: int) -> float:
    """The whole market's level (same for every coin, so rankings hold).

    A secular rise (about 0.5 in early 2024, 1.0 from 2025 on, so BTC starts 2024 near 48k)
    times a cycle of about +-0.3.
    """
    key = stream_key(seed, "market")
    trend = 0.45 + 0.55 / (1.0 + math.exp(-(t - _TREND_MID_MS) / (120 * DAY_MS)))
    cycle = 1.0 + 0.22 * smooth(key, t, 120 * DAY_MS) + 0.08 * smooth(key + 1, t, 10 * DAY_MS)
    return trend * cycle


def lognormal(key: int, n: int, sigma: float) -> float:
    """A heavy-tailed positive factor with median 1 (Box-Muller from two uniforms)."""
    u1 = max(unit(key, 2 * n), 1e-12)
    u2 = unit(key, 2 * n + 1)
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    return math.exp(sigma * z)


def ohlc(
    value_at: Callable[[int], float],
    key: int,
    opens: list[int],
    step: int,
    now: int,
    wiggle: float,
) -> list[tuple[int, float, float, float, float]]:
    """OHLC bars for the given bar opens; the open of a bar is the close of the one before.

    `value_at(t)` is the series; `wiggle` is the typical high/low excursion of a 1 h bar, as a
    fraction. A bar that contains `now` is still forming: it closes at value_at(now).
    """
    if not opens:
        return []
    bars = []
    scale = wiggle * math.sqrt(step / HOUR_MS)
    prev_t = opens[0]
    prev_v = value_at(prev_t)
    for t in opens:
        o = prev_v if t == prev_t else value_at(t)
        end = t + step
        forming = end > now
        c = value_at(now if forming else end)
        frac = min(1.0, max(0.0, (now - t) / step)) if forming else 1.0
        n = t // MINUTE_MS
        hi = max(o, c) * (1.0 + scale * frac * unit(key, 2 * n))
        lo = min(o, c) * (1.0 - scale * frac * unit(key, 2 * n + 1))
        bars.append((t, o, hi, lo, c))
        prev_t, prev_v = end, c
    return bars


def fmt_num(value: float, places: int) -> str:
    """A decimal string without trailing zeros, as CoinGlass sends OHLC strings ("0.007742")."""
    text = f"{value:.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
