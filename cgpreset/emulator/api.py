"""What the emulated API answers: validation and data for each endpoint, as envelopes.

Pure: no sockets, no key handling (rest.py checks the key first). Every answer is an envelope
dict in the key order CoinGlass uses; errors are the bodies seen in the wild
(tests/fixtures/_errors_observed.json), over HTTP 200.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from cgpreset.api.catalogue import Endpoint
from cgpreset.emulator import bars as series
from cgpreset.emulator.bodies import (
    ENDPOINT_NOT_FOUND,
    PAIR_NOT_FOUND,
    SERVER_ERROR,
    UPGRADE_PLAN,
    Body,
    bad_param,
    interval_not_in_plan,
    missing_param,
    ok,
)
from cgpreset.emulator.data import (
    COIN_BY_CODE,
    COINS,
    EXCHANGES,
    INSTRUMENTS,
    PAIRS,
    SUPPORTED_EXCHANGES,
    Coin,
)
from cgpreset.emulator.etf import etf_rows
from cgpreset.emulator.layered import LayerAnswers, check_integers, routes
from cgpreset.emulator.market import Market, change_pct
from cgpreset.emulator.rows import (
    CHANGE_WINDOWS,
    CHANGE_WINDOWS_OI,
    exchange_list,
    joined,
    liq_row,
    ohlc_row,
    oi_total_row,
    split_at_forming,
    venue_weight,
    window,
)
from cgpreset.plans import (
    DAY_MS,
    HOUR_MS,
    INTERVALS,
    LIQUIDATION_RANGES,
    MINUTE_MS,
    Plan,
    bar_open,
    history_days,
)

#: Answers of history windows whose bars have all closed, kept (newest used last out): a closed
#: bar never changes, so the emulator need not compute it again and costs little CPU per call.
CLOSED_CACHE_SIZE = 4096
#: The shipped layers' paths, answered by the hand-written generators below, shaped like the real
#: samples (the demo, the golden files and the contract tests rest on them). Every other layer of
#: the catalogue in effect is answered from its definition (layered.py).
HANDWRITTEN = frozenset({
    "/api/futures/funding-rate/history", "/api/futures/open-interest/aggregated-history",
    "/api/futures/liquidation/aggregated-history", "/api/futures/aggregated-taker-buy-sell-volume/history",
    "/api/futures/liquidation/exchange-list", "/api/etf/bitcoin/flow-history",
})


class ApiModel:
    """Answers one (path, params) for a plan, seed and clock."""

    def __init__(self, plan: Plan, seed: int, now_ms: Callable[[], int], *,
                 markets_page_cap: int | None = None) -> None:
        self.plan = plan
        self.seed = seed
        self.now_ms = now_ms
        self.markets_page_cap = markets_page_cap
        self.market = Market(seed)
        self._closed: OrderedDict[tuple[Any, ...], Body] = OrderedDict()
        self._closed_lock = threading.Lock()
        self._encoded: dict[int, bytes] = {}  # the bytes of kept answers, by the id of the kept object
        self.layers = LayerAnswers(plan, self.market, now_ms, self._keep)

    # -- entry point -------------------------------------------------------------------------

    def answer(self, path: str, params: Mapping[str, str]) -> Body:
        """The envelope for a GET with a valid key (key and rate checks happen before this).

        Checks in order: path (404), plan (Upgrade plan), no params at all on a history endpoint
        (500), the first missing required parameter, interval (400, then the plan floor: 403),
        integer parameters and limit (400); then the endpoint: an unknown pair is a 400, an unknown
        coin is success with empty data. A layer without a hand-written answer: layered.py.
        """
        path = path.rstrip("/") or "/"
        found = routes(HANDWRITTEN)
        ep = found.endpoints.get(path)
        if ep is None:
            ls = found.layers.get(path)
            return ENDPOINT_NOT_FOUND if ls is None else self.layers.answer(ls, params)
        if not self.plan.at_least(ep.min_plan):
            return UPGRADE_PLAN
        if ep.is_history and not params:
            return SERVER_ERROR  # observed on history endpoints called with no params at all
        for name in ep.required:
            if not params.get(name):
                return missing_param(name)
        error = self._check_common(ep, params)
        if error is not None:
            return error
        handler: Callable[[Mapping[str, str]], Body] = getattr(self, "_" + ep.id.replace("-", "_"))
        split = split_at_forming(params, self.now_ms()) if ep.is_history else None
        if split is not None:  # the closed bars kept, the forming bar computed (a run's newest window)
            closed, forming = split
            whole = joined(self._keep(self._closed_key(ep, closed), lambda: handler(closed)), handler(forming))
            if whole is not None:
                return whole
        return self._keep(self._closed_key(ep, params), lambda: handler(params))

    def clock(self, path: str) -> tuple[str, str] | None:
        """The time field of the layer at `path` and its unit ("ms" or "s"), for faults that shift it."""
        return routes(HANDWRITTEN).clocks.get(path.rstrip("/") or "/")

    def _keep(self, key: tuple[Any, ...] | None, compute: Callable[[], Body]) -> Body:
        """The answer kept under `key` (a closed window), else `compute()`, kept when there is a key."""
        if key is None:
            return compute()
        with self._closed_lock:
            body = self._closed.get(key)
            if body is not None:
                self._closed.move_to_end(key)
                return body
        body = compute()
        with self._closed_lock:
            self._closed[key] = body
            self._encoded[id(body)] = b""  # kept: encoded on first use
            while len(self._closed) > CLOSED_CACHE_SIZE:
                self._encoded.pop(id(self._closed.popitem(last=False)[1]), None)
        return body

    def encode(self, body: Body, dumps: Callable[[Body], bytes]) -> bytes:
        """`dumps(body)`, computed once for an answer the model keeps (a closed window)."""
        with self._closed_lock:
            kept = id(body) in self._encoded
            raw = self._encoded.get(id(body))
        if raw:
            return raw
        raw = dumps(body)
        if kept:
            with self._closed_lock:
                if id(body) in self._encoded:
                    self._encoded[id(body)] = raw
        return raw

    def _closed_key(self, ep: Endpoint, params: Mapping[str, str]) -> tuple[Any, ...] | None:
        """The cache key of a history answer whose window holds closed bars only (None: not cacheable).

        The current bar is part of the key, so the plan's depth (which moves with it) stays exact.
        """
        end = params.get("end_time")
        if not ep.is_history or not end:
            return None
        interval = params["interval"]
        current = bar_open(self.now_ms(), interval)
        if bar_open(int(end) - 1, interval) >= current:
            return None  # holds the forming bar
        return (ep.path, current, tuple(sorted(params.items())))

    def _check_common(self, ep: Endpoint, params: Mapping[str, str]) -> Body | None:
        if "interval" in ep.required:
            interval = params["interval"]
            if interval not in INTERVALS:
                return bad_param("interval", interval, "one of " + ", ".join(INTERVALS))
            if ep.interval_floor and not self.plan.allows_interval(interval):
                return interval_not_in_plan(interval)
        return check_integers(params, ep.params)

    # -- history windows -----------------------------------------------------------------------

    def bar_opens(self, params: Mapping[str, str], listed: str) -> tuple[list[int], int]:
        """The bar opens a history call returns at the plan's depth, and the bar length (rows.window)."""
        return window(params, listed=listed, now=self.now_ms(), days=history_days(self.plan, params["interval"]))

    # -- endpoints (one method per catalogue id) -------------------------------------------------

    def _supported_coins(self, params: Mapping[str, str]) -> Body:
        return ok([c.code for c in COINS])

    def _supported_exchanges(self, params: Mapping[str, str]) -> Body:
        return ok(list(SUPPORTED_EXCHANGES))

    def _supported_exchange_pairs(self, params: Mapping[str, str]) -> Body:
        wanted = params.get("exchange")
        names = [wanted] if wanted else sorted(EXCHANGES, key=str.lower)
        return ok({ex: [i.as_row() for i in INSTRUMENTS[ex]] for ex in names if ex in INSTRUMENTS})

    def _account_subscription(self, params: Mapping[str, str]) -> Body:
        today = bar_open(self.now_ms(), "1d")
        expire = today + (97 + self.seed % 200) * DAY_MS + 41_491_000
        return ok({"level": self.plan.name, "expire_time": expire, "expired": False})

    def _coins_markets(self, params: Mapping[str, str]) -> Body:
        now = self.now_ms()
        venues = exchange_list(params.get("exchange_list"))
        rows = [r for r in (self._market_row(c, now, venues) for c in COINS) if r is not None]
        rows.sort(key=lambda r: -r["market_cap_usd"])  # market-cap order: NOT the OI ranking
        # Page size, its cap and the order are undocumented upstream: 100 per page by
        # default, so one page holds the whole universe unless `markets_page_cap` is set; callers
        # must rank by OI themselves.
        per_page = int(params.get("per_page") or 100)
        if self.markets_page_cap is not None:
            per_page = min(per_page, self.markets_page_cap)
        page = max(1, int(params.get("page") or 1))
        return ok(rows[(page - 1) * per_page : page * per_page])

    def _open_interest_exchange_list(self, params: Mapping[str, str]) -> Body:
        coin = COIN_BY_CODE.get(params["symbol"])
        if coin is None:
            return ok([])
        now = self.now_ms()
        rows = sorted((self._oi_row(coin, ex, now) for ex in coin.venues), key=lambda r: -r["open_interest_usd"])
        return ok([oi_total_row(coin, rows), *rows])

    def _funding_rate_history(self, params: Mapping[str, str]) -> Body:
        inst = PAIRS.get((params["exchange"], params["symbol"]))
        if inst is None:
            return PAIR_NOT_FOUND
        if inst.kind == "dated":
            return ok([])  # dated futures have no funding
        coin = COIN_BY_CODE[inst.coin]
        opens, step = self.bar_opens(params, coin.listed)
        key = self.market.key("funding-hl", inst.exchange, inst.instrument_id)
        bars = series.ohlc(lambda t: self.market.funding(inst, t), key, opens, step, self.now_ms(), 0.04)
        return ok([ohlc_row(b, lambda v: series.fmt_num(v, 6)) for b in bars])

    def _open_interest_aggregated_history(self, params: Mapping[str, str]) -> Body:
        coin = COIN_BY_CODE.get(params["symbol"])
        if coin is None:
            return ok([])
        opens, step = self.bar_opens(params, coin.listed)
        if params.get("unit", "usd").lower() == "coin":
            def value(t: int) -> float:
                return self.market.oi(coin, t) / self.market.price(coin, t)
            fmt = lambda v: series.fmt_num(v, 4)  # noqa: E731
        else:
            def value(t: int) -> float:
                return self.market.oi(coin, t)
            fmt = lambda v: str(round(v))  # noqa: E731
        key = self.market.key("oi-hl", coin.code)
        bars = series.ohlc(value, key, opens, step, self.now_ms(), 0.002)
        return ok([ohlc_row(b, fmt) for b in bars])

    def _liquidation_aggregated_history(self, params: Mapping[str, str]) -> Body:
        return self._flow_history(params, "liq")

    def _aggregated_taker_buy_sell_volume_history(self, params: Mapping[str, str]) -> Body:
        return self._flow_history(params, "taker")

    def _flow_history(self, params: Mapping[str, str], kind: str) -> Body:
        coin = COIN_BY_CODE.get(params["symbol"])
        with_msg = kind == "taker"  # the taker docs example carries "msg": "success"
        if coin is None:
            return ok([], with_msg=with_msg)
        weight = venue_weight(coin, exchange_list(params["exchange_list"]))
        if weight == 0.0:
            return ok([], with_msg=with_msg)
        opens, step = self.bar_opens(params, coin.listed)
        now = self.now_ms()
        rows = []
        for t in opens:
            if kind == "liq":
                lo, sh = self.market.liquidations(coin, t, step, now)
                rows.append({"time": t, "aggregated_long_liquidation_usd": round(lo * weight, 5),
                             "aggregated_short_liquidation_usd": round(sh * weight, 5)})
            else:
                buy, sell = self.market.taker(coin, t, step, now)
                if params.get("unit", "usd").lower() == "coin":
                    price = self.market.price(coin, t)
                    buy, sell = buy / price, sell / price
                rows.append({"time": t, "aggregated_buy_volume_usd": round(buy * weight, 4),
                             "aggregated_sell_volume_usd": round(sell * weight, 4)})
        return ok(rows, with_msg=with_msg)

    def _liquidation_exchange_list(self, params: Mapping[str, str]) -> Body:
        rng = params["range"]
        if rng not in LIQUIDATION_RANGES:
            return bad_param("range", rng, "one of " + ", ".join(LIQUIDATION_RANGES))
        symbol = params.get("symbol")
        if symbol and symbol not in COIN_BY_CODE:
            return ok([])
        coins = [COIN_BY_CODE[symbol]] if symbol else list(COINS)
        hours = int(rng[:-1])
        now = self.now_ms()
        totals: dict[str, list[float]] = {}
        for coin in coins:
            for ex, (lo, sh) in self.market.liquidations_by_exchange(coin, now, hours).items():
                acc = totals.setdefault(ex, [0.0, 0.0])
                acc[0] += lo
                acc[1] += sh
        rows = [liq_row(ex, lo, sh) for ex, (lo, sh) in totals.items()]
        rows.sort(key=lambda r: -r["liquidation_usd"])
        all_long = sum(r["longLiquidation_usd"] for r in rows)
        all_short = sum(r["shortLiquidation_usd"] for r in rows)
        return ok([liq_row("All", all_long, all_short), *rows])

    def _etf_bitcoin_flow_history(self, params: Mapping[str, str]) -> Body:
        return ok(etf_rows(self.market, self.now_ms()))

    # -- row builders --------------------------------------------------------------------------

    def _oi_row(self, coin: Coin, ex: str, now: int) -> dict[str, Any]:
        m = self.market
        usd = m.oi_on(coin, ex, now)
        price = m.price(coin, now)
        coin_margined = ex in ("Binance", "OKX", "Bybit") and coin.inverse
        frac = 0.12 + 0.12 * series.unit(m.key("cm", coin.code, ex), 0) if coin_margined else 0.0
        row: dict[str, Any] = {
            "exchange": ex,
            "symbol": coin.code,
            "open_interest_usd": round(usd, 4),
            "open_interest_quantity": round(usd / price, 4),
            "open_interest_by_coin_margin": round(usd * frac, 2),
            "open_interest_by_stable_coin_margin": round(usd * (1 - frac), 2),
            "open_interest_quantity_by_coin_margin": round(usd * frac / price, 4),
            "open_interest_quantity_by_stable_coin_margin": round(usd * (1 - frac) / price, 4),
        }
        for label, minutes in CHANGE_WINDOWS_OI:
            row[f"open_interest_change_percent_{label}"] = change_pct(
                usd, m.oi_on(coin, ex, now - minutes * MINUTE_MS))
        return row

    def _market_row(self, coin: Coin, now: int, venues: list[str] | None) -> dict[str, Any] | None:
        m = self.market
        share = 1.0 if venues is None else venue_weight(coin, venues)
        if share == 0.0:
            return None
        price = m.price(coin, now)
        oi = m.oi(coin, now) * share
        mcap = coin.market_cap_usd * price / coin.price
        vol_key = m.key("volact", coin.code)

        def volume(end: int, minutes: int) -> float:
            mid = end - minutes * MINUTE_MS // 2
            rate = m.oi(coin, mid) * share * 0.02 * (1.0 + 0.5 * series.level(vol_key, mid))
            return rate * minutes / 60

        funding = 0.0068 + 0.0045 * series.level(m.key("funding-avg", coin.code), now)
        by_vol = funding * (1 + 0.1 * series.signed(m.key("fv", coin.code), now // HOUR_MS))
        vol24 = volume(now, 1440)
        row: dict[str, Any] = {
            "symbol": coin.code,
            "current_price": float(f"{price:.6g}"),
            "avg_funding_rate_by_oi": round(funding, 6),
            "avg_funding_rate_by_vol": round(by_vol, 6),
            "market_cap_usd": round(mcap, 3),
            "open_interest_market_cap_ratio": round(oi / mcap, 4),
            "open_interest_usd": round(oi, 4),
            "open_interest_quantity": round(oi / price, 4),
            "open_interest_volume_ratio": round(oi / vol24, 4),
        }
        for label, minutes in CHANGE_WINDOWS:
            row[f"price_change_percent_{label}"] = change_pct(price, m.price(coin, now - minutes * MINUTE_MS))
        for label, minutes in CHANGE_WINDOWS_OI:
            row[f"open_interest_change_percent_{label}"] = change_pct(
                oi, m.oi(coin, now - minutes * MINUTE_MS) * share)
        for label, minutes in CHANGE_WINDOWS_OI:
            row[f"volume_change_percent_{label}"] = change_pct(
                volume(now, minutes), volume(now - minutes * MINUTE_MS, minutes))
        for label, minutes in (("1h", 60), ("4h", 240), ("24h", 1440)):
            row[f"volume_change_usd_{label}"] = round(
                volume(now, minutes) - volume(now - minutes * MINUTE_MS, minutes), 4)
        lsr_key = m.key("lsr", coin.code)
        for label, minutes in CHANGE_WINDOWS:
            row[f"long_short_ratio_{label}"] = round(1.0 + 0.25 * series.level(lsr_key, now - minutes * 30_000), 4)
        hourly = m.hourly_liquidations(coin, now, 24)
        for hours in (1, 4, 12, 24):
            lo = sum(b[1] for b in hourly[-hours:]) * share
            sh = sum(b[2] for b in hourly[-hours:]) * share
            row[f"liquidation_usd_{hours}h"] = round(lo + sh, 5)
            row[f"long_liquidation_usd_{hours}h"] = round(lo, 5)
            row[f"short_liquidation_usd_{hours}h"] = round(sh, 5)
        return row
