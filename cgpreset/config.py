"""The per-coin config model: what `generate` writes and `run-preset`, `health` and `stream` read.

Strict at every level (unknown keys are errors) and immutable. `cgpreset schema` prints its
JSON Schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .files import read_text
from .plans import INTERVALS, LIQUIDATION_RANGES, Plan, history_days
from .ws_events import channel_problem

CONFIG_VERSION = 1
Interval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w"]
LiqRange = Literal["1h", "4h", "12h", "24h"]
assert set(Interval.__args__) == set(INTERVALS)  # type: ignore[attr-defined]
assert set(LiqRange.__args__) == set(LIQUIDATION_RANGES)  # type: ignore[attr-defined]


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

    exchange: str = Field(description="CoinGlass exchange name, e.g. OKX")
    symbol: str = Field(description="the venue's own instrument id, e.g. SOL-USDT-SWAP")
    interval: Interval | None = Field(default=None, description="overrides the config interval")


class CoinLayer(Strict):
    """A coin-aggregated series (open-interest OHLC)."""

    symbol: str = Field(description="CoinGlass coin code, e.g. SOL or 1000PEPE")
    interval: Interval | None = None


class ExchangeListLayer(Strict):
    """A coin-aggregated series over an explicit exchange list (liquidations, taker volume)."""

    symbol: str
    exchange_list: list[str] = Field(min_length=1)
    interval: Interval | None = None

    @field_validator("exchange_list")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("exchange_list names an exchange twice")
        return value


class LiquidationExchangesLayer(Strict):
    """The per-exchange liquidation breakdown over a rolling range."""

    symbol: str
    range: LiqRange = "1h"
    exchanges: list[str] = Field(min_length=1, description='rows to keep; "All" is the total row')


class EtfFlowsLayer(Strict):
    """US spot ETF daily flows (macro; identical for every coin)."""

    asset: Literal["bitcoin"] = "bitcoin"
    history_days: int | None = Field(default=None, ge=1, description="keep only the last N days")


class Layers(Strict):
    """The layers a config runs; a missing layer is not run."""

    funding: FundingLayer | None = None
    open_interest: CoinLayer | None = None
    liquidation: ExchangeListLayer | None = None
    taker_volume: ExchangeListLayer | None = None
    liquidation_exchanges: LiquidationExchangesLayer | None = None
    etf_flows: EtfFlowsLayer | None = None

    def enabled(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name) is not None]


class HealthSpec(Strict):
    """Thresholds for the checks run on every series."""

    freshness_intervals: float = Field(default=2.0, gt=0, description="last closed bar within N intervals")
    min_rows: int = Field(default=1, ge=0)
    max_gap_bars: int = Field(default=0, ge=0)
    flag_all_zero: bool = True
    tolerance: float = Field(default=0.01, ge=0, description="relative tolerance of sum invariants")


class StreamSpec(Strict):
    """The WebSocket channels for this coin."""

    channels: list[Channel] = Field(default_factory=lambda: ["liquidation_orders"])
    min_volume_usd: float = Field(default=0.0, ge=0)


class Provenance(Strict):
    """Where a generated config came from: content hashes, never timestamps."""

    preset: str
    preset_sha256: str
    template: str
    template_sha256: str
    discovery_sha256: str


class CoinConfig(Strict):
    """One coin's validated config."""

    version: Literal[1] = CONFIG_VERSION
    coin: str = Field(min_length=1, description="CoinGlass coin code")
    plan: Plan
    interval: Interval
    history_days: int = Field(ge=1, description="backfill depth on the first run")
    layers: Layers
    health: HealthSpec = Field(default_factory=HealthSpec)
    stream: StreamSpec = Field(default_factory=StreamSpec)
    notes: list[str] = Field(default_factory=list, description="why the resolver chose what it chose")
    provenance: Provenance | None = None

    @model_validator(mode="after")
    def _feasible(self) -> CoinConfig:
        for problem in plan_problems(self):
            raise ValueError(problem)
        return self

    def interval_for(self, layer: str) -> str:
        spec = getattr(self.layers, layer)
        return getattr(spec, "interval", None) or self.interval


def plan_problems(cfg: CoinConfig) -> list[str]:
    """Plan feasibility: intervals below the plan's floor, history deeper than the plan keeps."""
    problems: list[str] = []
    for layer in ("funding", "open_interest", "liquidation", "taker_volume"):
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


def format_validation(exc: ValidationError) -> str:
    """The first pydantic error as `field.path: message`."""
    err = exc.errors()[0]
    loc = ""
    for part in err["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else f"{'.' if loc else ''}{part}"
    msg = err["msg"].removeprefix("Value error, ")
    extra = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    # Whole-model checks (plan feasibility) already start their message with the field name.
    return f"{loc}: {msg}{extra}" if loc else f"{msg}{extra}"


def load_yaml(path: Path) -> Any:
    """Parse a YAML file; ConfigError names the file and line on bad YAML."""
    text = read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None


def load_config(path: Path) -> CoinConfig:
    """Read and validate one coin config; ConfigError names file and field."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return CoinConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation(exc)}") from None


def config_paths(paths: list[Path]) -> list[Path]:
    """Expand directories to their *.yaml / *.yml files (sorted); keep files as given."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml") and q.is_file()))
        elif p.exists():
            out.append(p)
        else:
            raise ConfigError(f"{p}: no such file or directory")
    if not out:
        raise ConfigError(f"no config files in {', '.join(map(str, paths))}")
    return out


def load_configs(paths: list[Path]) -> list[tuple[Path, CoinConfig]]:
    """Load every config under `paths`; the first bad one stops with its file and field."""
    return [(p, load_config(p)) for p in config_paths(paths)]
