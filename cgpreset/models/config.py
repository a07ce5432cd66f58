"""The per-coin config model: what `generate` writes and `run-preset`, `health` and `stream` read.

Strict at every level (unknown keys are errors) and immutable. `cgpreset schema` prints its
JSON Schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from cgpreset._io import format_validation
from cgpreset._yaml import read_yaml
from cgpreset.channels import channel_problem
from cgpreset.errors import ConfigError
from cgpreset.layers import COIN_LAYERS, FLOOR_LAYERS, LAYERS
from cgpreset.models.fields import COIN_PATTERN as COIN_PATTERN  # re-exported: part of this module's API
from cgpreset.models.fields import NAME_PATTERN as NAME_PATTERN
from cgpreset.models.fields import TOKEN_PATTERN as TOKEN_PATTERN
from cgpreset.models.fields import CoinCode as CoinCode
from cgpreset.models.fields import ExchangeName as ExchangeName
from cgpreset.models.fields import FiniteFloat as FiniteFloat
from cgpreset.models.fields import InstrumentId as InstrumentId
from cgpreset.models.fields import Interval as Interval
from cgpreset.models.fields import LiqRange as LiqRange
from cgpreset.models.fields import StrictInt as StrictInt
from cgpreset.models.fields import _not_bool
from cgpreset.plans import Plan, history_days

CONFIG_VERSION: Final = 1


def _known_channel(name: str) -> str:
    problem = channel_problem(name, bare_ok=True)
    if problem:
        raise ValueError(problem)
    return name


#: A documented WebSocket channel (a bare futures_trades / spot_trades means the coin's funding pair).
Channel = Annotated[str, AfterValidator(_known_channel)]



class Strict(BaseModel):
    """Base for committed models: unknown keys rejected, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FundingLayer(Strict):
    """Funding-rate OHLC for one exchange pair (pair-level endpoint)."""

    exchange: ExchangeName = Field(description="CoinGlass exchange name, e.g. OKX")
    symbol: InstrumentId = Field(description="the venue's own instrument id, e.g. SOL-USDT-SWAP")
    interval: Interval | None = Field(default=None, description="overrides the config interval")


class CoinLayer(Strict):
    """A coin-aggregated series (open-interest OHLC)."""

    symbol: CoinCode = Field(description="the config's coin code, e.g. SOL or 1000PEPE")
    interval: Interval | None = None


class ExchangeListLayer(Strict):
    """A coin-aggregated series over an explicit exchange list (liquidations, taker volume)."""

    symbol: CoinCode = Field(description="the config's coin code")
    exchange_list: list[ExchangeName] = Field(min_length=1)
    interval: Interval | None = None

    @field_validator("exchange_list")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("exchange_list names an exchange twice")
        return value


class LiquidationExchangesLayer(Strict):
    """The per-exchange liquidation breakdown over a rolling range."""

    symbol: CoinCode = Field(description="the config's coin code")
    range: LiqRange = "1h"
    exchanges: list[ExchangeName] = Field(min_length=1, description='rows to keep; "All" is the total row')


class EtfFlowsLayer(Strict):
    """US spot ETF daily flows (macro; identical for every coin)."""

    asset: Literal["bitcoin"] = "bitcoin"
    history_days: StrictInt | None = Field(default=None, ge=1, description="keep only the last N days")


class Layers(Strict):
    """The layers a config runs (at least one); a missing layer is not run."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    funding: FundingLayer | None = None
    open_interest: CoinLayer | None = None
    liquidation: ExchangeListLayer | None = None
    taker_volume: ExchangeListLayer | None = None
    liquidation_exchanges: LiquidationExchangesLayer | None = None
    etf_flows: EtfFlowsLayer | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Layers:
        if not self.enabled():
            raise PydanticCustomError(
                "no_layer", "no layer to run: enable at least one of {layers}", {"layers": ", ".join(LAYERS)}
            )
        return self

    def enabled(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name) is not None]


class HealthSpec(Strict):
    """Thresholds for the checks run on every series."""

    freshness_intervals: FiniteFloat = Field(default=2.0, gt=0, description="last closed bar within N intervals")
    min_rows: StrictInt = Field(default=1, ge=0)
    max_gap_bars: StrictInt = Field(default=0, ge=0)
    flag_all_zero: bool = Field(default=True, strict=True)
    tolerance: FiniteFloat = Field(default=0.01, ge=0, description="relative tolerance of sum invariants")


class StreamSpec(Strict):
    """The WebSocket channels for this coin."""

    channels: list[Channel] = Field(default_factory=lambda: ["liquidation_orders"])
    min_volume_usd: FiniteFloat = Field(default=0.0, ge=0)


#: provenance.source (and a discovery snapshot's source) when discovery asked the embedded emulator.
EMULATOR_SOURCE: Final = "emulator"
SOURCE_PATTERN = r"^(emulator|api:\S+)$"


def api_source(base_url: str) -> str:
    """provenance.source when discovery asked the API at `base_url`: `api:<host>`, without the port
    (deterministic: a local server restarted on another port is the same source)."""
    return "api:" + (urlsplit(base_url).hostname or base_url).lower()


class Provenance(Strict):
    """Where a generated config came from: content hashes and the discovery's source, never timestamps."""

    preset: str
    preset_sha256: str
    template: str
    template_sha256: str
    discovery_sha256: str
    source: str | None = Field(
        default=None, pattern=SOURCE_PATTERN,
        description="whose discovery the config was made from: `emulator` (the embedded one: synthetic "
                    "venues) or `api:<host>`; absent in configs of older releases")


class CoinConfig(Strict):
    """One coin's validated config."""

    version: Annotated[Literal[1], BeforeValidator(_not_bool)] = CONFIG_VERSION
    coin: CoinCode = Field(description="CoinGlass coin code as CoinGlass spells it, e.g. BTC, 1000PEPE, kPEPE")
    plan: Plan
    interval: Interval
    history_days: StrictInt = Field(ge=1, description="backfill depth on the first run")
    layers: Layers
    health: HealthSpec = Field(default_factory=HealthSpec)
    stream: StreamSpec = Field(default_factory=StreamSpec)
    notes: list[str] = Field(default_factory=list, description="why the resolver chose what it chose")
    provenance: Provenance | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CoinConfig:
        # One validator, so the order is fixed: symbols first (located errors), then plan feasibility.
        mismatched = symbol_problems(self)
        if mismatched:
            raise ValidationError.from_exception_data(type(self).__name__, mismatched)
        for problem in plan_problems(self):
            raise ValueError(problem)
        return self

    def interval_for(self, layer: str) -> str:
        spec = getattr(self.layers, layer)
        return getattr(spec, "interval", None) or self.interval


def symbol_problems(cfg: CoinConfig) -> list[InitErrorDetails]:
    """A coin-level layer whose symbol is not the config's coin (its data would be another coin's)."""
    out: list[InitErrorDetails] = []
    for layer in COIN_LAYERS:
        spec = getattr(cfg.layers, layer)
        if spec is not None and spec.symbol != cfg.coin:
            error = PydanticCustomError(
                "symbol_not_coin",
                "{symbol} is not this config's coin {coin} (a coin-level layer's symbol is the coin code)",
                {"symbol": spec.symbol, "coin": cfg.coin},
            )
            out.append(InitErrorDetails(type=error, loc=("layers", layer, "symbol"), input=spec.symbol))
    return out


def plan_problems(cfg: CoinConfig) -> list[str]:
    """Plan feasibility: intervals below the plan's floor, history deeper than the plan keeps."""
    problems: list[str] = []
    for layer in FLOOR_LAYERS:
        spec = getattr(cfg.layers, layer)
        if spec is None:
            continue
        interval = spec.interval or cfg.interval
        if not cfg.plan.allows_interval(interval):
            where = f"layers.{layer}.interval" if spec.interval else "interval"
            problems.append(
                f"{where}: {interval} is below the {cfg.plan.value} plan's floor ({cfg.plan.interval_floor})"
            )
            continue
        keep = history_days(cfg.plan, interval)
        if keep is not None and cfg.history_days > keep:
            problems.append(
                f"history_days: {cfg.history_days} is deeper than the {cfg.plan.value} plan keeps at "
                f"{interval} ({keep} days)"
            )
    return sorted(set(problems))


def load_config(path: Path) -> CoinConfig:
    """Read and validate one coin config; ConfigError names file and field."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return CoinConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation(exc, CoinConfig)}") from None


def config_paths(paths: list[Path]) -> list[Path]:
    """Expand directories to their *.yaml / *.yml files (sorted); keep files as given.

    A file reached twice (`DIR DIR/sol.yaml`, a symlink) is listed once, where it was first seen.
    """
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml") and q.is_file()))
        elif p.exists():
            found.append(p)
        else:
            raise ConfigError(f"{p}: no such file or directory")
    if not found:
        raise ConfigError(f"no config files in {', '.join(map(str, paths))}")
    seen: set[Path] = set()
    out: list[Path] = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def load_configs(paths: list[Path]) -> list[tuple[Path, CoinConfig]]:
    """Load every config under `paths`; the first bad one stops with its file and field."""
    return [(p, load_config(p)) for p in config_paths(paths)]
