"""Answers for any catalogue layer from its definition: routes, checks, windows and rows (pure).

The shipped layers keep their hand-written answers (api.py: shaped like the real samples, and the
demo, the golden files and the contract tests rest on them). Every other layer of the catalogue in
effect (`cgpreset.layers.catalogue()`, read per request, so a definition added with
`cgpreset.layers.use(...)` is served at once) is answered here from its definition, in the order
the real API checks: plan (`Upgrade plan`), no parameters at all on a history endpoint (500), the
first missing required parameter, the interval (unknown: 400; below the layer's floor for the plan:
403), integer parameters and `limit` (400); then the series by kind:

    pair             exchange + symbol must be an instrument the exchange lists, else the 400
                     "The requested pair does not exist on the exchange..."
    coin             symbol = a coin code (an unknown one: success, no rows)
    coin_exchanges   symbol + exchange_list (no listed exchange trades the coin: no rows)
    exchange_snapshot  range (one of the definition's values) and an optional symbol: an "All"
                     row, then one row per exchange, biggest first
    macro            no parameters: the market as a whole

A path several definitions share (a repo's own layer over an endpoint cgpreset ships) is answered
from the first of them in report order: the API has one answer per path.

Windows are the hand-written ones' (rows.window): aligned bars from start_time (ms), end_time
exclusive, at most `limit`, the plan's history depth, the forming bar last, times in the time
field's unit. Rows come from synth.py. Closed windows are kept (ApiModel's cache).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cgpreset import layers
from cgpreset.api.catalogue import DISCOVERY, Endpoint, layer_endpoint
from cgpreset.emulator.bodies import (
    LIMIT_HARD_MAX,
    PAIR_NOT_FOUND,
    SERVER_ERROR,
    UPGRADE_PLAN,
    Body,
    bad_param,
    interval_not_in_plan,
    missing_param,
    ok,
)
from cgpreset.emulator.data import COIN_BY_CODE, COINS, PAIRS, coin_share
from cgpreset.emulator.market import Market
from cgpreset.emulator.rows import ceil_bar, exchange_list, joined, listed_ms, split_at_forming, venue_weight, window
from cgpreset.emulator.synth import RowMaker, Subject, totals
from cgpreset.layers import LayerSpec
from cgpreset.plans import INTERVAL_MS, INTERVALS, Plan, bar_open, history_days, interval_ms

#: The coin a macro layer follows (the market as a whole moves with it).
MACRO_COIN = "BTC"
#: Whole-history answers whose closed days are kept (per layer, series and current bar).
WHOLE_CACHE_SIZE = 64
INTEGER_PARAMS = ("limit", "start_time", "end_time", "per_page", "page")

Keep = Callable[[tuple[Any, ...] | None, Callable[[], Body]], Body]


@dataclass(frozen=True)
class Routes:
    """Where a path goes, for one catalogue: a hand-written answer's endpoint, or a layer's definition."""

    endpoints: Mapping[str, Endpoint]
    layers: Mapping[str, LayerSpec]
    clocks: Mapping[str, tuple[str, str]]  # path -> the layer's time field and unit (for faults)


_routes: tuple[layers.Catalogue, frozenset[str], Routes] | None = None


def routes(handwritten: frozenset[str]) -> Routes:
    """The routes of the catalogue in effect (worked out again only when the catalogue changes)."""
    global _routes
    cat = layers.catalogue()
    kept = _routes
    if kept is not None and kept[0] is cat and kept[1] is handwritten:
        return kept[2]
    endpoints: dict[str, Endpoint] = {e.path: e for e in DISCOVERY.values()}
    generic: dict[str, LayerSpec] = {}
    for ls in cat.values():
        if ls.path in handwritten:
            endpoints.setdefault(ls.path, layer_endpoint(ls))
        elif ls.path not in endpoints:
            generic.setdefault(ls.path, ls)
    clocks = {ls.path: (ls.time_field, ls.time_unit) for ls in cat.values() if ls.time_field}
    built = Routes(endpoints, generic, clocks)
    _routes = (cat, handwritten, built)
    return built


def check_integers(params: Mapping[str, str], accepted: Iterable[str]) -> Body | None:
    """Integer parameters that are not integers, and a `limit` out of range (400)."""
    accepted = set(accepted)
    for name in INTEGER_PARAMS:
        if name in params and name in accepted and not params[name].lstrip("-").isdigit():
            return bad_param(name, params[name], "an integer")
    if "limit" in params and "limit" in accepted and not 1 <= int(params["limit"]) <= LIMIT_HARD_MAX:
        return {"code": "400", "msg": f"Parameter 'limit' must be between 1 and {LIMIT_HARD_MAX}"}
    return None


def upgrade_for(ls: LayerSpec, plan: Plan, interval: str) -> Plan:
    """The plan a 403 names: the first above `plan` serving the interval with no floor for this
    layer (as recorded: a Hobbyist at 1h is told STANDARD, although Startup allows 1h), else the
    first above serving it at all."""
    above = [p for p in Plan if p.rank > plan.rank and ls.allows(p, interval)]
    free = [p for p in above if ls.floor_for(p) == INTERVALS[0]]
    return (free or above or [Plan.PROFESSIONAL])[0]


def depth_days(plan: Plan, interval: str) -> int | None:
    """The plan's history at this interval; an interval only a layer's own floor lets in gets the
    depth of the plan's finest."""
    days = history_days(plan, interval)
    return history_days(plan, plan.interval_floor) if days == 0 else days


class LayerAnswers:
    """Answers a layer's path from its definition, for a plan, a market (seed) and a clock."""

    def __init__(self, plan: Plan, market: Market, now_ms: Callable[[], int], keep: Keep) -> None:
        self.plan = plan
        self.market = market
        self.now_ms = now_ms
        self.keep = keep  # the model's cache of closed windows: keep(key, compute)
        self._whole: OrderedDict[tuple[Any, ...], list[dict[str, Any]]] = OrderedDict()
        self._whole_lock = threading.Lock()

    def answer(self, ls: LayerSpec, params: Mapping[str, str]) -> Body:
        """The envelope for a GET of the layer's path (the key was checked before)."""
        error = self.check(ls, params)
        if error is not None:
            return error
        if ls.snapshot:
            return self.snapshot(ls, params)
        subject = self.subject(ls, params)
        if not isinstance(subject, Subject):
            return subject
        if ls.whole_history:
            return ok(self.whole(ls, subject))
        split = split_at_forming(params, self.now_ms())
        if split is not None:  # the closed bars kept, the forming bar computed (a run's newest window)
            closed, forming = split
            whole = joined(self.keep(self.closed_key(ls, closed), lambda: self.windowed(ls, closed, subject)),
                           self.windowed(ls, forming, subject))
            if whole is not None:
                return whole
        return self.keep(self.closed_key(ls, params), lambda: self.windowed(ls, params, subject))

    def check(self, ls: LayerSpec, params: Mapping[str, str]) -> Body | None:
        """Plan, parameters, interval and integers, in the order the real API checks them."""
        if not self.plan.at_least(ls.min_plan):
            return UPGRADE_PLAN
        ep = layer_endpoint(ls)
        if ls.windowed and not params:
            return SERVER_ERROR  # observed on history endpoints called with no params at all
        for name in ep.required:
            if not params.get(name):
                return missing_param(name)
        if ls.windowed:
            interval = params["interval"]
            if interval not in INTERVALS:
                return bad_param("interval", interval, "one of " + ", ".join(INTERVALS))
            if not ls.allows(self.plan, interval):
                return interval_not_in_plan(interval, upgrade_for(ls, self.plan, interval))
        if ls.snapshot and params["range"] not in ls.range_buckets:
            return bad_param("range", params["range"], "one of " + ", ".join(ls.range_buckets))
        return check_integers(params, ep.params)

    def subject(self, ls: LayerSpec, params: Mapping[str, str]) -> Subject | Body:
        """The series a request names, by the layer's kind; or the answer for one that does not exist."""
        if ls.kind == "pair":
            exchange, symbol = params["exchange"], params["symbol"]
            inst = PAIRS.get((exchange, symbol))
            if inst is None:
                return PAIR_NOT_FOUND
            coin = COIN_BY_CODE[inst.coin]
            return Subject(coin, coin_share(coin, exchange), f"{exchange}:{symbol}", symbol)
        if ls.kind == "macro":
            return Subject(COIN_BY_CODE[MACRO_COIN], 1.0, "*", MACRO_COIN)
        found = COIN_BY_CODE.get(params["symbol"])
        if found is None:
            return ok([])
        coin = found
        if ls.kind == "coin":
            return Subject(coin, 1.0, coin.code, coin.code)
        venues = exchange_list(params["exchange_list"]) or []
        share = venue_weight(coin, venues)
        if share == 0.0:
            return ok([])
        return Subject(coin, share, f"{coin.code}@{','.join(sorted(set(venues)))}", coin.code)

    # -- the three histories -------------------------------------------------------------------

    def closed_key(self, ls: LayerSpec, params: Mapping[str, str]) -> tuple[Any, ...] | None:
        """The cache key of a window whose bars have all closed (None: it holds the forming bar)."""
        end, interval = params.get("end_time"), params["interval"]
        current = bar_open(self.now_ms(), interval)
        if not end or bar_open(int(end) - 1, interval) >= current:
            return None
        return (ls, current, tuple(sorted(params.items())))

    def windowed(self, ls: LayerSpec, params: Mapping[str, str], subject: Subject) -> Body:
        """The bars of a start_time/end_time window, at the plan's depth, the forming one last."""
        now = self.now_ms()
        interval = params["interval"]
        opens, step = window(params, listed=subject.coin.listed, now=now, days=depth_days(self.plan, interval))
        return ok(RowMaker(self.market, ls, subject).rows(opens, step, now))

    def whole(self, ls: LayerSpec, subject: Subject) -> list[dict[str, Any]]:
        """Every bar since the listing (the closed ones kept until the next bar), the forming one last."""
        now, bar = self.now_ms(), ls.bar or "1d"
        step, current = interval_ms(bar), bar_open(now, bar)
        maker = RowMaker(self.market, ls, subject)
        key = (ls, subject.name, current)
        with self._whole_lock:
            closed = self._whole.get(key)
        if closed is None:
            first = ceil_bar(listed_ms(subject.coin.listed), bar)
            closed = maker.rows(range(first, current, step), step, now)
            with self._whole_lock:
                self._whole[key] = closed
                while len(self._whole) > WHOLE_CACHE_SIZE:
                    self._whole.popitem(last=False)
        return [*closed, *maker.rows([current], step, now)]

    def snapshot(self, ls: LayerSpec, params: Mapping[str, str]) -> Body:
        """Per-exchange totals over the rolling `range`: the "All" row first, then biggest first."""
        symbol = params.get("symbol")
        if symbol and symbol not in COIN_BY_CODE:
            return ok([])
        coins = [COIN_BY_CODE[symbol]] if symbol else list(COINS)
        rng = params["range"]
        step = INTERVAL_MS.get(rng) or interval_ms(ls.range_buckets[rng])
        now = self.now_ms()
        t = bar_open(now, "1m") - step
        per_exchange: dict[str, list[dict[str, Any]]] = {}
        for coin in coins:
            for ex in coin.venues:
                maker = RowMaker(self.market, ls, Subject(coin, coin_share(coin, ex), f"{coin.code}:{ex}", coin.code))
                per_exchange.setdefault(ex, []).append(maker.values(t, step, now, exchange=ex))
        rows = [totals(r, ls, ex) for ex, r in per_exchange.items()]
        first = next((c.field for c in ls.columns), None)
        if first is not None:
            rows.sort(key=lambda r: -float(r[first]))
        return ok([totals(rows, ls, "All"), *rows])

