"""Resolver: preset x watchlist x discovery snapshot -> one resolution per coin, with reasons.

Pure: no I/O, no clock. Every choice and every drop carries a sentence that ends up in the
config's `notes` and in the `resolve` table. The seed coin (SOL) is the identity case: it gets
exactly the preset's production values.

Problems with the preset itself (an unknown seed coin, an exchange CoinGlass does not know, an
interval the plan does not serve) are ConfigErrors naming the file and field. So is a coin the
user wrote into the watchlist (`coins`, `include`, `pin`) that CoinGlass does not know: a typo
must not silently shrink the watchlist. A watchlist that leaves no coin at all is an error too
(ConfigError when the watchlist itself excludes everything, FindingsError when the ranking is
empty). What the data decides (an excluded coin, a layer with no listing) drops that coin or
layer with a reason and the rest go on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cgpreset.errors import ConfigError, did_you_mean
from cgpreset.generate.discovery import Instrument, Snapshot
from cgpreset.generate.selection import DroppedCoin as DroppedCoin  # re-exported: part of a Resolution
from cgpreset.generate.selection import filenames as filenames
from cgpreset.generate.selection import select_coins
from cgpreset.generate.selection import unknown_coins as unknown_coins
from cgpreset.layers import layer_names, spec
from cgpreset.models.layers import settings_of
from cgpreset.models.preset import ALL_ROW, Preset, Watchlist
from cgpreset.plans import Plan, history_days

_DATED = re.compile(r"(?:[_-]\d{6}(?:\d{2})?|-\d{1,2}[A-Z]{3}\d{2})$", re.IGNORECASE)


# -- contract classification ----------------------------------------------------------------


def is_dated(inst: Instrument) -> bool:
    """A delivery (dated) contract: an id ending in a date such as _261225, -261225 or -26DEC25."""
    return bool(_DATED.search(inst.instrument_id))


def is_coin_margined(inst: Instrument) -> bool:
    """Inverse / coin-margined: quoted in USD, or ids like BTCUSD_PERP and SOL-USD-SWAP."""
    ident = inst.instrument_id.upper()
    return inst.quote_asset.upper() == "USD" or ident.endswith("_PERP") or "-USD-SWAP" in ident


def is_perpetual(inst: Instrument, quote: str) -> bool:
    """A linear perpetual quoted in `quote`: not dated, not coin-margined."""
    return inst.quote_asset.upper() == quote.upper() and not is_dated(inst) and not is_coin_margined(inst)


def _kind(inst: Instrument) -> str:
    if is_dated(inst):
        return "dated"
    if is_coin_margined(inst):
        return "coin-margined"
    return f"{inst.quote_asset} perpetual"


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoinResolution:
    """One coin that made it: the config-ready layer values and why they are what they are."""

    coin: str  # CoinGlass spelling
    requested: str  # as written in the watchlist (or taken from the ranking)
    selected_by: str  # "pin", "include", "list", "top"
    rank: int | None  # 1-based open-interest rank, if the snapshot has a ranking
    filename: str
    layers: dict[str, dict[str, Any]]
    notes: tuple[str, ...]
    dropped_layers: dict[str, str] = field(default_factory=dict)
    fallbacks: tuple[str, ...] = ()  # pair layers resolved on a fallback venue or quote

    @property
    def pair_layer(self) -> str | None:
        """The coin's own pair layer: its first layer of kind `pair` (catalogue order; funding in the
        shipped preset), or None when it has none."""
        order = layer_names()
        return next((n for n in sorted(self.layers, key=order.index) if spec(n).kind == "pair"), None)

    @property
    def pair_fallback(self) -> bool:
        """Whether the coin's own pair was resolved on a fallback venue or quote."""
        return self.pair_layer is not None and self.pair_layer in self.fallbacks

    def as_dict(self) -> dict[str, Any]:
        return {
            "coin": self.coin,
            "requested": self.requested,
            "selected_by": self.selected_by,
            "rank": self.rank,
            "file": self.filename,
            "layers": self.layers,
            "dropped_layers": dict(sorted(self.dropped_layers.items())),
            "funding_fallback": self.pair_fallback,  # the schema's first name for pair_fallback, kept
            "pair_fallback": self.pair_fallback,
            "fallback_layers": list(self.fallbacks),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Resolution:
    """Every coin of the watchlist: resolved (ordered by rank, then code) or dropped."""

    coins: tuple[CoinResolution, ...]
    dropped: tuple[DroppedCoin, ...]
    notes: tuple[str, ...] = ()  # about the watchlist as a whole

    def as_dict(self) -> dict[str, Any]:
        return {
            "coins": [c.as_dict() for c in self.coins],
            "dropped": [d.as_dict() for d in self.dropped],
            "notes": list(self.notes),
        }


# -- preset checks ----------------------------------------------------------------------------


def plan_problems(preset: Preset, plan: Plan) -> list[str]:
    """`field: problem` for every preset value the plan cannot serve (interval floor, history depth)."""
    problems: list[str] = []
    for name in preset.layers.enabled():
        if not plan.at_least(spec(name).min_plan):
            problems.append(f"layers.{name}: needs the {spec(name).min_plan.value} plan or higher "
                            f"(this is {plan.value})")
    for name, where, interval in preset.layer_intervals():
        if not plan.at_least(spec(name).min_plan):
            continue  # said above: the floor of a plan that cannot serve the layer says nothing
        if not spec(name).allows(plan, interval):
            problems.append(
                f"{where}: {interval} is below the {plan.value} plan's floor ({spec(name).floor_for(plan)})"
            )
            continue
        keep = history_days(plan, interval)
        if keep is not None and preset.history_days > keep:
            problems.append(
                f"history_days: {preset.history_days} is deeper than the {plan.value} plan keeps "
                f"at {interval} ({keep} days)"
            )
    return sorted(set(problems))


def _preset_exchanges(preset: Preset) -> list[tuple[str, str]]:
    """(field path, exchange name) for every exchange the preset names, by each layer's kind."""
    out: list[tuple[str, str]] = []
    for name, block in preset.layers.items():
        kind = spec(name).kind
        if kind == "pair":
            out.append((f"layers.{name}.exchange", block.exchange))
            out += [(f"layers.{name}.fallback_exchanges[{i}]", e) for i, e in enumerate(block.fallback_exchanges)]
        elif kind == "coin_exchanges":
            out += [(f"layers.{name}.exchange_list[{i}]", e) for i, e in enumerate(block.exchange_list)]
        elif kind == "exchange_snapshot":
            out += [(f"layers.{name}.exchanges[{i}]", e) for i, e in enumerate(block.exchanges)
                    if e.lower() != ALL_ROW.lower()]
    return out


def check_preset(preset: Preset, snapshot: Snapshot, *, source: str = "preset") -> dict[str, str]:
    """The preset against what the API supports; returns preset exchange name -> CoinGlass spelling.

    ConfigError (file, field, value) for a seed coin or an exchange that CoinGlass does not know.
    """
    problems: list[str] = []
    if snapshot.coin_spelling(preset.coin) is None:
        near = did_you_mean(preset.coin, snapshot.coins) or " (not in supported-coins)"
        problems.append(f"{source}: coin: {preset.coin} is not a CoinGlass coin{near}")
    spelling: dict[str, str] = {}
    for where, name in _preset_exchanges(preset):
        found = snapshot.exchange_spelling(name)
        if found is None:
            listed = sorted(snapshot.pairs, key=str.lower)
            near = did_you_mean(name, listed) or f" (supported-exchange-pairs lists {', '.join(listed)})"
            problems.append(f"{source}: {where}: {name} is not a CoinGlass exchange{near}")
        else:
            spelling[name] = found
    if problems:
        raise ConfigError("; ".join(problems))
    return spelling


# -- per-coin layers --------------------------------------------------------------------------


def _pair(
    name: str, block: Any, coin: str, seed: str, snapshot: Snapshot, ex_name: dict[str, str]
) -> tuple[dict[str, Any] | None, list[str], bool, str | None]:
    """A pair layer (funding, long/short ratios, basis...): the preset's production pair for the
    seed coin, else the venue's own instrument id of a linear perpetual on the preset's exchange,
    then each fallback exchange, then each fallback quote. (layer, notes, on a fallback?, drop reason)."""
    listings = snapshot.listings(coin)
    preferred = ex_name[block.exchange]
    extra = {"interval": block.interval} if block.interval else {}
    notes: list[str] = []
    if coin == seed:
        if any(i.instrument_id == block.symbol for i in listings.get(preferred, [])):
            layer = {"exchange": preferred, "symbol": block.symbol, **extra}
            return layer, [f"{name}: {preferred} {block.symbol}, the preset's production pair"], False, None
        notes.append(
            f"{name}: the preset's production pair {preferred} {block.symbol} is not listed any more; "
            "resolved like any other coin"
        )
    venues = list(dict.fromkeys([preferred, *(ex_name[e] for e in block.fallback_exchanges)]))
    quotes = list(dict.fromkeys(q.upper() for q in [block.quote, *block.fallback_quotes]))
    misses: dict[str, str | None] = {}  # exchange -> what it has instead (None: nothing)
    for quote in quotes:
        for ex in venues:
            insts = listings.get(ex, [])
            ok = sorted((i for i in insts if is_perpetual(i, quote)), key=lambda i: (len(i.instrument_id),
                                                                                      i.instrument_id))
            if not ok:
                misses.setdefault(ex, _instead(insts))
                continue
            pick = ok[0]
            if ex == preferred and quote == quotes[0]:
                notes.append(f"{name}: {ex} {pick.instrument_id} ({quote} perpetual, the preset's venue)")
            else:
                notes.append(f"{name}: {ex} {pick.instrument_id} ({quote} perpetual); fallback: "
                             + _summary(misses, coin))
            if len(ok) > 1:
                others = ", ".join(i.instrument_id for i in ok[1:])
                notes.append(f"{name}: {ex} also lists {others}; took the shortest id")
            fallback = not (ex == preferred and quote == quotes[0])
            return {"exchange": ex, "symbol": pick.instrument_id, **extra}, notes, fallback, None
    reason = f"no {' or '.join(quotes)} perpetual for {coin}: {_summary(misses, coin)}"
    return None, notes, False, reason


def _instead(insts: list[Instrument]) -> str | None:
    if not insts:
        return None
    return ", ".join(f"{i.instrument_id} ({_kind(i)})" for i in sorted(insts, key=lambda i: i.instrument_id))


def _summary(misses: dict[str, str | None], coin: str) -> str:
    """`OKX, Gate do not list X; Bybit has only XUSD (coin-margined)`."""
    unlisted = [ex for ex, instead in misses.items() if instead is None]
    parts = []
    if unlisted:
        parts.append(f"{', '.join(unlisted)} {'does' if len(unlisted) == 1 else 'do'} not list {coin}")
    parts += [f"{ex} has only {instead}" for ex, instead in misses.items() if instead is not None]
    return "; ".join(parts)


def _narrow(names: list[str], coin: str, snapshot: Snapshot, ex_name: dict[str, str]) -> tuple[
    list[str], list[str]
]:
    """Keep the exchanges (preset order) that list the coin; the rest with a reason."""
    listings = snapshot.listings(coin)
    kept: list[str] = []
    gone: list[str] = []
    for name in names:
        if name.lower() == ALL_ROW.lower():
            kept.append(ALL_ROW)
            continue
        ex = ex_name[name]
        (kept if listings.get(ex) else gone).append(ex)
    return kept, gone


def _resolve_coin(
    preset: Preset, coin: str, snapshot: Snapshot, ex_name: dict[str, str]
) -> tuple[dict[str, dict[str, Any]], list[str], dict[str, str], tuple[str, ...]]:
    """One coin's layers, by each layer's kind: (layers, notes, dropped layer -> why, layers on a fallback)."""
    layers: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    dropped: dict[str, str] = {}
    fallbacks: list[str] = []
    seed = snapshot.coin_spelling(preset.coin) or preset.coin
    for name, block in preset.layers.items():
        kind = spec(name).kind
        layer: dict[str, Any] | None = None
        if kind == "pair":
            layer, more, fallback, why = _pair(name, block, coin, seed, snapshot, ex_name)
            notes += more
            fallbacks += [name] if fallback else []
            if layer is None:
                assert why is not None
                dropped[name] = why
        elif kind == "coin":
            layer = {"symbol": coin, **({"interval": block.interval} if block.interval else {})}
        elif kind == "coin_exchanges":
            kept, gone = _narrow(block.exchange_list, coin, snapshot, ex_name)
            if gone and kept:
                notes.append(f"{name}.exchange_list: dropped {', '.join(gone)} (does not list {coin})")
            if not kept:
                dropped[name] = f"none of {', '.join(ex_name[e] for e in block.exchange_list)} lists {coin}"
            else:
                layer = {"symbol": coin, "exchange_list": kept,
                         **({"interval": block.interval} if block.interval else {})}
        elif kind == "exchange_snapshot":
            kept, gone = _narrow(block.exchanges, coin, snapshot, ex_name)
            if gone and kept and snapshot.listings(coin):
                notes.append(f"{name}.exchanges: dropped {', '.join(gone)} (does not list {coin})")
            if kept == [ALL_ROW] and not snapshot.listings(coin):
                dropped[name] = f"{coin} is listed on no exchange, so there is no {ALL_ROW} row"
            elif not kept:
                dropped[name] = f"none of {', '.join(block.exchanges)} lists {coin}"
            else:
                layer = {"symbol": coin, "range": block.range, "exchanges": kept}
        else:  # macro: the preset's settings, the same for every coin
            layer = {k: v for k, v in settings_of(block).items() if v is not None}
        if layer is not None:
            layers[name] = layer
    for name, why in dropped.items():
        notes.append(f"{name}: layer dropped: {why}")
    return layers, notes, dropped, tuple(fallbacks)


def resolve(
    preset: Preset,
    watchlist: Watchlist,
    snapshot: Snapshot,
    *,
    preset_source: str = "preset",
    watchlist_source: str = "watchlist",
) -> Resolution:
    """Resolve every watchlist coin against the snapshot. Deterministic for equal inputs."""
    ex_name = check_preset(preset, snapshot, source=preset_source)
    chosen, dropped, list_notes = select_coins(watchlist, snapshot, watchlist_source)
    names = filenames([c for c, _, _ in chosen])
    rank_of = {c: i + 1 for i, c in enumerate(snapshot.ranking.coins)} if snapshot.ranking else {}
    how_text = {
        "pin": "pinned",
        "include": "included",
        "list": "listed",
        "top": f"top {watchlist.top} by open interest"
        + (f" ({snapshot.ranking.source})" if snapshot.ranking else ""),
    }
    out: list[CoinResolution] = []
    for coin, requested, how in chosen:
        layers, notes, gone, fallbacks = _resolve_coin(preset, coin, snapshot, ex_name)
        if not layers:  # nothing left to fetch: a config with no layer is no config
            why = "; ".join(f"{name}: {reason}" for name, reason in sorted(gone.items()))
            dropped.append(DroppedCoin(requested, f"no layer left ({why})"))
            continue
        head = [f"watchlist: {how_text[how]}"]
        if requested != coin:
            head.append(f"coin: {requested!r} is spelled {coin} by CoinGlass")
        if names[coin] != f"{coin.lower()}.yaml":
            head.append(f"file: {names[coin]} (another coin differs from {coin} only in case)")
        out.append(
            CoinResolution(
                coin=coin,
                requested=requested,
                selected_by=how,
                rank=rank_of.get(coin),
                filename=names[coin],
                layers=layers,
                notes=tuple(head + notes),
                dropped_layers=gone,
                fallbacks=fallbacks,
            )
        )
    out.sort(key=lambda r: (r.rank is None, r.rank or 0, r.coin))
    return Resolution(coins=tuple(out), dropped=tuple(dropped), notes=tuple(list_notes))
