"""CoinGlass v4 plans as data: rate budgets, interval floors and history depth (the docs' 2026 plan tables)."""

from __future__ import annotations

from enum import Enum

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

#: Every interval the history endpoints accept, finest first (`2h` appears in the 2026 plan table only).
INTERVAL_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "1w": 7 * DAY_MS,
}
INTERVALS: tuple[str, ...] = tuple(INTERVAL_MS)

#: `range` values of /api/futures/liquidation/exchange-list.
LIQUIDATION_RANGES: tuple[str, ...] = ("1h", "4h", "12h", "24h")


class Plan(str, Enum):
    """A CoinGlass API plan, lowest first."""

    HOBBYIST = "hobbyist"
    STARTUP = "startup"
    STANDARD = "standard"
    PROFESSIONAL = "professional"

    @property
    def rank(self) -> int:
        return list(Plan).index(self)

    @property
    def rate_per_minute(self) -> int:
        return RATE_PER_MINUTE[self]

    @property
    def interval_floor(self) -> str:
        """The finest interval the plan may request on history endpoints."""
        return INTERVAL_FLOOR[self]

    def allows_interval(self, interval: str) -> bool:
        return INTERVAL_MS[interval] >= INTERVAL_MS[self.interval_floor]

    def at_least(self, other: Plan) -> bool:
        return self.rank >= other.rank

    @classmethod
    def from_level(cls, level: str) -> Plan:
        """Map the subscription `level` (e.g. "STANDARD"); ENTERPRISE budgets as PROFESSIONAL."""
        name = level.strip().lower()
        if name == "enterprise":
            return cls.PROFESSIONAL
        return cls(name)

    @classmethod
    def from_rate_limit(cls, per_minute: int) -> Plan:
        """Best plan whose budget fits the `API-KEY-MAX-LIMIT` header."""
        best = cls.HOBBYIST
        for plan in cls:
            if RATE_PER_MINUTE[plan] <= per_minute:
                best = plan
        return best


#: Requests per minute per key (official 2026 figures).
RATE_PER_MINUTE: dict[Plan, int] = {
    Plan.HOBBYIST: 30,
    Plan.STARTUP: 80,
    Plan.STANDARD: 300,
    Plan.PROFESSIONAL: 1200,
}

#: Finest interval per plan on every history endpoint we use.
INTERVAL_FLOOR: dict[Plan, str] = {
    Plan.HOBBYIST: "4h",
    Plan.STARTUP: "30m",
    Plan.STANDARD: "1m",
    Plan.PROFESSIONAL: "1m",
}

#: History depth in days per plan and interval (the docs' table); None = everything since listing.
HISTORY_DAYS: dict[Plan, dict[str, int | None]] = {
    Plan.HOBBYIST: {"4h": 180, "6h": 360, "8h": 360, "12h": 360, "1d": None, "1w": None},
    Plan.STARTUP: {
        "30m": 90, "1h": 180, "2h": 180, "4h": 180, "6h": 360, "8h": 360, "12h": 360,
        "1d": None, "1w": None,
    },
    Plan.STANDARD: {
        "1m": 6, "3m": 20, "5m": 30, "15m": 90, "30m": 180, "1h": 360, "2h": 360, "4h": 360,
        "6h": 360, "8h": 360, "12h": 360, "1d": None, "1w": None,
    },
    Plan.PROFESSIONAL: {
        "1m": 12, "3m": 40, "5m": 60, "15m": 180, "30m": 360, "1h": 720, "2h": 720, "4h": 720,
        "6h": 720, "8h": 720, "12h": 720, "1d": None, "1w": None,
    },
}


def history_days(plan: Plan, interval: str) -> int | None:
    """Days of history the plan keeps at this interval; None = all; 0 = interval not allowed."""
    table = HISTORY_DAYS[plan]
    if interval not in table:
        return 0
    return table[interval]


def interval_ms(interval: str) -> int:
    """Length of one bar in milliseconds; ValueError for an unknown interval."""
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"unknown interval {interval!r} (expected one of {', '.join(INTERVALS)})") from None


def bar_open(ts_ms: int, interval: str) -> int:
    """Open time of the bar that contains ts_ms (bars align to UTC epoch multiples; 1w to Monday)."""
    step = interval_ms(interval)
    if interval == "1w":
        monday = 4 * DAY_MS  # 1970-01-05 was a Monday
        return ts_ms - ((ts_ms - monday) % step)
    return ts_ms - (ts_ms % step)
