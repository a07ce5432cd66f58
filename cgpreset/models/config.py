"""The per-coin config model: what `generate` writes and `run-preset`, `health` and `stream` read.

Strict at every level (unknown keys are errors) and immutable. `cgpreset schema` prints its
JSON Schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from cgpreset._io import format_validation
from cgpreset._yaml import read_yaml
from cgpreset.channels import channel_problem
from cgpreset.errors import ConfigError
from cgpreset.layers import DEFINITION_SUFFIX, REGISTRY, REPO_LAYERS, Catalogue, catalogue, spec, use
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
from cgpreset.models.layers import LayersBase, layers_model, subclass_for
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
    """One coin's validated config. `layers` holds one block per layer of the catalogue in effect
    (see models/layers.py): validate through `CoinConfig.model_validate`, which builds the model
    of the active catalogue, so a repo's own layers are checked like the shipped ones."""

    version: Annotated[Literal[1], BeforeValidator(_not_bool)] = CONFIG_VERSION
    coin: CoinCode = Field(description="CoinGlass coin code as CoinGlass spells it, e.g. BTC, 1000PEPE, kPEPE")
    plan: Plan
    interval: Interval
    history_days: StrictInt = Field(ge=1, description="backfill depth on the first run")
    layers: LayersBase
    health: HealthSpec = Field(default_factory=HealthSpec)
    stream: StreamSpec = Field(default_factory=StreamSpec)
    notes: list[str] = Field(default_factory=list, description="why the resolver chose what it chose")
    provenance: Provenance | None = None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> CoinConfig:
        """Validate against the active catalogue's model (the base class knows no layer)."""
        model = config_model() if cls is CoinConfig else cls
        return super(CoinConfig, model).model_validate(obj, *args, **kwargs)

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
        block = self.layers.get(layer)
        return getattr(block, "interval", None) or self.interval


def config_model(cat: Catalogue | None = None) -> type[CoinConfig]:
    """CoinConfig with one `layers` block per layer of the catalogue (the active one by default)."""
    cat = cat or catalogue()
    return subclass_for(CoinConfig, "layers", layers_model(cat), cat)


def symbol_problems(cfg: CoinConfig) -> list[InitErrorDetails]:
    """A coin-level layer whose symbol is not the config's coin (its data would be another coin's)."""
    out: list[InitErrorDetails] = []
    for layer, block in cfg.layers.items():
        if layer in REGISTRY and spec(layer).symbol_is_coin and block.symbol != cfg.coin:
            error = PydanticCustomError(
                "symbol_not_coin",
                "{symbol} is not this config's coin {coin} (a coin-level layer's symbol is the coin code)",
                {"symbol": block.symbol, "coin": cfg.coin},
            )
            out.append(InitErrorDetails(type=error, loc=("layers", layer, "symbol"), input=block.symbol))
    return out


def plan_problems(cfg: CoinConfig) -> list[str]:
    """Plan feasibility: a layer above the plan, intervals below its floor, history deeper than it keeps."""
    problems: list[str] = []
    for layer, block in cfg.layers.items():
        ls = spec(layer)
        if not cfg.plan.at_least(ls.min_plan):
            problems.append(f"layers.{layer}: needs the {ls.min_plan.value} plan or higher "
                            f"(the config is for {cfg.plan.value})")
            continue
        if not ls.floor:
            continue
        own = getattr(block, "interval", None)
        interval = own or cfg.interval
        if not ls.allows(cfg.plan, interval):
            where = f"layers.{layer}.interval" if own else "interval"
            problems.append(f"{where}: {interval} is below the {cfg.plan.value} plan's floor "
                            f"({ls.floor_for(cfg.plan)})")
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
        raise ConfigError(f"{path}: {format_validation(exc, config_model())}") from None


def config_paths(paths: list[Path]) -> list[Path]:
    """Expand directories to their *.yaml / *.yml files (sorted); keep files as given.

    A file reached twice (`DIR DIR/sol.yaml`, a symlink) is listed once, where it was first seen.
    """
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml") and q.is_file()
                                and not q.name.endswith(DEFINITION_SUFFIX)))
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


def use_layers_near(paths: list[Path]) -> None:
    """Make the catalogue in effect the shipped layers plus a repo's own (`layers/*.yaml` in the
    working directory) and those generate put beside the configs (`<name>.layer.yaml`)."""
    places = [REPO_LAYERS] + [p if p.is_dir() else p.parent for p in paths]
    use(places)


def load_configs(paths: list[Path]) -> list[tuple[Path, CoinConfig]]:
    """Load every config under `paths` (the layer definitions beside them joining the catalogue);
    the first bad one stops with its file and field."""
    files = config_paths(paths)
    use_layers_near(paths)
    return [(p, load_config(p)) for p in files]
