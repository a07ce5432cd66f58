"""Preset and Watchlist: the committed inputs of `resolve` and `generate`, plus their loaders.

A preset is one hand-tuned, production-signed-off config for a seed coin (SOL), written in the
config's own vocabulary, plus the preferences the resolver needs to clone it to other coins
(the funding venue and quote, a fallback exchange order). A watchlist says which coins to clone
it to: an explicit list, or the top N by open interest.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cgpreset._io import DEFAULT_PRESET as DEFAULT_PRESET  # re-exported: the loaders' callers find them here
from cgpreset._io import DEFAULT_TEMPLATES as DEFAULT_TEMPLATES
from cgpreset._io import DEFAULT_WATCHLIST as DEFAULT_WATCHLIST
from cgpreset._io import format_validation
from cgpreset._yaml import read_yaml
from cgpreset.errors import ConfigError
from cgpreset.layers import Catalogue, catalogue, spec
from cgpreset.models.config import HealthSpec, Interval, StreamSpec
from cgpreset.models.layers import PresetLayersBase, preset_layers_model, subclass_for
from cgpreset.plans import Plan

#: The name of the "total" row of liquidation/exchange-list (its first row); not an exchange.
ALL_ROW = "All"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Preset(_Strict):
    """One production preset for a seed coin."""

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    coin: str = Field(min_length=1, description="the seed coin, as CoinGlass spells it")
    plan: Plan
    interval: Interval
    history_days: int = Field(ge=1, strict=True)
    layers: PresetLayersBase
    health: HealthSpec = Field(default_factory=HealthSpec)
    stream: StreamSpec = Field(default_factory=StreamSpec)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Preset:
        """Validate against the active catalogue's model (the base class knows no layer)."""
        model = preset_model() if cls is Preset else cls
        return super(Preset, model).model_validate(obj, *args, **kwargs)

    def layer_intervals(self) -> list[tuple[str, str, str]]:
        """(layer, preset field, interval) for every layer on whose interval the plan's floor applies."""
        out: list[tuple[str, str, str]] = []
        for name, block in self.layers.items():
            if not spec(name).floor:
                continue
            if block.interval:
                out.append((name, f"layers.{name}.interval", block.interval))
            else:
                out.append((name, "interval", self.interval))
        return out


def preset_model(cat: Catalogue | None = None) -> type[Preset]:
    """Preset with one `layers` block per layer of the catalogue (the active one by default)."""
    cat = cat or catalogue()
    return subclass_for(Preset, "layers", preset_layers_model(cat), cat)


class Watchlist(_Strict):
    """Which coins to clone the preset to: `coins: [...]` or `top: N` by open interest."""

    coins: list[str] | None = Field(default=None, min_length=1)
    top: int | None = Field(default=None, ge=1, le=1000, strict=True)
    rank_by: Literal["open_interest"] = "open_interest"
    candidates: int = Field(
        default=30, ge=1, le=1000, strict=True,
        description="below Standard: rank the first N supported coins by open-interest/exchange-list",
    )
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    pin: list[str] = Field(default_factory=list, description="always in (the seed coin)")

    @model_validator(mode="after")
    def _one_source(self) -> Watchlist:
        if (self.coins is None) == (self.top is None):
            raise ValueError("give exactly one of `coins` (an explicit list) or `top` (a count)")
        clash = {c.lower() for c in self.pin + self.include} & {c.lower() for c in self.exclude}
        if clash:
            raise ValueError(f"{', '.join(sorted(clash))} both kept (pin/include) and excluded")
        return self


def _load(path: Path, model: type[Any], what: str) -> Any:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation(exc, model)}") from None


def load_preset(path: Path) -> Preset:
    """Read and validate a preset; ConfigError names the file and every bad field."""
    return _load(path, preset_model(), "preset")  # type: ignore[no-any-return]


def load_watchlist(path: Path) -> Watchlist:
    """Read and validate a watchlist; ConfigError names the file and every bad field."""
    return _load(path, Watchlist, "watchlist")  # type: ignore[no-any-return]


#: How provenance and messages name a default input read from the copy inside the package.
SHIPPED = "cgpreset:"


def find_default(path: Path) -> Path:
    """Resolve a default input path: as given (relative to cwd), else the copy shipped with cgpreset.

    Looks in the package data (`cgpreset/data/<path>`, for installed wheels) and then in the
    source checkout next to the package (editable installs). Returns `path` unchanged when none
    exists, so the caller's error names the path the user expects.
    """
    if path.exists() or path.is_absolute():
        return path
    packaged = resources.files("cgpreset").joinpath("data", *path.parts)
    if isinstance(packaged, Path) and packaged.exists():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / path
    if checkout.exists():
        return checkout
    return path


@dataclass(frozen=True)
class InputFile:
    """An input (preset, watchlist, templates) and the name provenance gives it."""

    path: Path
    name: str  # display path, or cgpreset:<default> for the copy shipped with cgpreset
    shipped: bool = False

    @property
    def note(self) -> str | None:
        """What to tell the user when the shipped copy stands in for a missing file."""
        if not self.shipped:
            return None
        default = self.name.removeprefix(SHIPPED)
        return f"{default} is not in {Path.cwd().as_posix()}: using the copy shipped with cgpreset ({self.name})"


def locate(given: Path | None, default: Path) -> InputFile:
    """The file the user named, else `default` relative to cwd, else the shipped copy (said so)."""
    if given is not None:
        return InputFile(given, display_path(given))
    found = find_default(default)
    if found == default:
        return InputFile(default, display_path(default))
    return InputFile(found, SHIPPED + default.as_posix(), shipped=True)


def where(path: Path) -> str:
    """A file's name for messages: relative to cwd when under it, else absolute (never shortened)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def display_path(path: Path) -> str:
    """A machine-independent name for a file (relative to cwd, else under its folder name)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
