"""`run-preset --coins/--layers`: run a subset of the configs (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from cgpreset.errors import UsageError, did_you_mean
from cgpreset.layers import layer_names
from cgpreset.models.config import CoinConfig

P = TypeVar("P", Path, str)


def split_names(value: str | None) -> list[str] | None:
    """`SOL, btc` -> ["SOL", "btc"]; None when the flag was not given."""
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def select_configs(configs: Sequence[tuple[P, CoinConfig]], *, coins: list[str] | None = None,
                   layers: list[str] | None = None) -> list[tuple[P, CoinConfig]]:
    """The configs of `coins` (any case), each with only `layers`; an unknown name is a UsageError."""
    if coins is not None:
        known = {cfg.coin.upper(): cfg.coin for _, cfg in configs}
        for coin in coins:
            if coin.upper() not in known:
                raise UsageError(f"--coins: {coin} is not in the configs{did_you_mean(coin, known.values())}")
        wanted = {c.upper() for c in coins}
        configs = [(p, cfg) for p, cfg in configs if cfg.coin.upper() in wanted]
    if layers is None:
        return list(configs)
    names = layer_names()
    for layer in layers:
        if layer not in names:
            raise UsageError(f"--layers: {layer} is not a layer{did_you_mean(layer, names)}; "
                             f"layers: {', '.join(names)}")
    drop: dict[str, None] = {name: None for name in names if name not in layers}
    return [(p, cfg.model_copy(update={"layers": cfg.layers.model_copy(update=drop)})) for p, cfg in configs]
