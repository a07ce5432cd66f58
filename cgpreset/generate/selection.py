"""Which coins a watchlist selects from a discovery snapshot, and their file names.

Pure: no I/O, no clock. Part of the resolver (resolver.py), which clones the preset to each coin
selected here; the coins the watchlist drops (excluded, displaced by a pin) carry their reason.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cgpreset.errors import ConfigError, FindingsError
from cgpreset.generate.discovery import Snapshot
from cgpreset.models.preset import Watchlist

_SAFE_NAME = re.compile(r"[^a-z0-9._-]")


@dataclass(frozen=True)
class DroppedCoin:
    """A watchlist coin that was skipped, and why."""

    requested: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "reason": self.reason}



# -- coin selection ---------------------------------------------------------------------------


def _suggest(name: str, snapshot: Snapshot) -> str:
    """` (did you mean SOL?)` for a close CoinGlass coin code, else ``."""
    by_upper: dict[str, str] = {}
    for coin in snapshot.coins:
        by_upper.setdefault(coin.upper(), coin)
    close = difflib.get_close_matches(name.upper(), list(by_upper), n=1, cutoff=0.75)
    return f" (did you mean {by_upper[close[0]]}?)" if close else ""


def unknown_coins(watchlist: Watchlist, snapshot: Snapshot, source: str = "watchlist") -> list[str]:
    """`file: field[i]: X is not a CoinGlass coin (did you mean Y?)` for every listed coin CoinGlass lacks."""
    problems: list[str] = []
    for where, names in (("pin", watchlist.pin), ("include", watchlist.include), ("coins", watchlist.coins or [])):
        for i, name in enumerate(names):
            if snapshot.coin_spelling(name) is None:
                problems.append(
                    f"{source}: {where}[{i}]: {name} is not a CoinGlass coin{_suggest(name, snapshot)}"
                )
    return problems


def select_coins(watchlist: Watchlist, snapshot: Snapshot, source: str) -> tuple[
    list[tuple[str, str, str]], list[DroppedCoin], list[str]
]:
    """(coin, requested, selected_by) in selection order, the dropped ones, and list-level notes.

    ConfigError for a listed coin CoinGlass does not know (every one, in one line), or for a
    watchlist that its own `exclude` empties; FindingsError when a `top` watchlist finds no
    ranked coin at all.
    """
    problems = unknown_coins(watchlist, snapshot, source)
    if problems:
        raise ConfigError("; ".join(problems))
    chosen: list[tuple[str, str, str]] = []
    dropped: list[DroppedCoin] = []
    notes: list[str] = [  # a typo in exclude would silently keep the coin in: say so
        f"{source}: exclude[{i}]: {name} is not a CoinGlass coin{_suggest(name, snapshot)}; it excludes nothing"
        for i, name in enumerate(watchlist.exclude) if snapshot.coin_spelling(name) is None
    ]
    excluded = {c.lower() for c in watchlist.exclude}

    taken: set[str] = set()

    def take(name: str, how: str) -> None:
        coin = snapshot.coin_spelling(name)
        assert coin is not None  # unknown_coins above
        if coin in taken:
            return
        if how not in ("pin", "include") and coin.lower() in excluded:
            dropped.append(DroppedCoin(name, "excluded by the watchlist"))
            return
        taken.add(coin)
        chosen.append((coin, name, how))

    for name in watchlist.pin:
        take(name, "pin")
    for name in watchlist.include:
        take(name, "include")
    if watchlist.coins is not None:
        for name in watchlist.coins:
            take(name, "list")
        if not chosen:
            raise ConfigError(f"{source}: coins: no coin left: exclude removes every listed coin")
        return chosen, dropped, notes
    assert watchlist.top is not None
    if snapshot.ranking is None:
        raise ConfigError(
            f"{source}: top: the discovery snapshot has no open-interest ranking "
            "(re-run discovery online with this watchlist)"
        )
    ranked = [c for c in snapshot.ranking.coins if snapshot.coin_spelling(c) is not None]
    notes += snapshot.meta.notes  # ranking rows discovery left out, each naming its coin
    # `top` counts the ranking and the pinned coins (a pin takes the place of the lowest-ranked
    # coin, which is named as displaced); `include` comes on top of it: top 10 + include [AVAX]
    # is 11 coins, unless AVAX is in the top 10 anyway.
    pinned = {c for c, _, how in chosen if how == "pin"}
    included = {c for c, _, how in chosen if how == "include"} - pinned
    slots = len(pinned)
    eligible = [c for c in ranked if c.lower() not in excluded]
    for coin in eligible:
        if slots >= watchlist.top:
            break
        if coin in pinned:
            continue
        slots += 1
        if coin in included:
            continue
        taken.add(coin)
        chosen.append((coin, coin, "top"))
    by_pin = ", ".join(sorted(pinned))
    for rank, coin in enumerate(eligible[:watchlist.top], start=1):
        if coin not in taken:
            dropped.append(DroppedCoin(coin, f"ranked {rank} of top {watchlist.top}, displaced by pin {by_pin}"))
    if not chosen:
        if ranked:
            raise ConfigError(f"{source}: exclude: removes every coin of the open-interest ranking")
        raise FindingsError(
            f"{source}: top: no coin to generate: the open-interest ranking "
            f"({snapshot.ranking.source}) has no supported coin"
        )
    if len(eligible) + len(pinned - set(eligible)) < watchlist.top:
        notes.append(f"top: only {len(eligible)} of {watchlist.top} coins have an open-interest ranking")
    if len(pinned) > watchlist.top:
        notes.append(f"top: pin holds {len(pinned)} coins, more than top ({watchlist.top})")
    return chosen, dropped, notes


def filenames(coins: list[str]) -> dict[str, str]:
    """coin -> lower-case file name; coins that differ only in case get a stable hash suffix.

    kPEPE and PEPE do not collide; kPEPE and KPEPE would on case-insensitive file systems, so
    the one sorting first keeps `kpepe.yaml` and the other becomes `kpepe-<sha6>.yaml`.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for coin in sorted(coins):
        stem = _SAFE_NAME.sub("_", coin.lower()) or "_"
        name = f"{stem}.yaml"
        if name in taken:
            name = f"{stem}-{hashlib.sha256(coin.encode()).hexdigest()[:6]}.yaml"
        taken.add(name)
        out[coin] = name
    return out
