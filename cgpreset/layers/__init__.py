"""THE layer catalogue: every data layer a config may run, each one a YAML definition.

The definitions cgpreset ships live beside this file (`cgpreset/layers/shipped/*.yaml`); a
repo's own join them from `layers/*.yaml` in its working directory, and `generate` puts the ones
its configs use beside them as `<name>.layer.yaml`, so `run-preset`, `validate` and a pod's
ConfigMap need nothing else. `use(...)` makes a catalogue the process's active one; every
module reads layers through it (`spec(name)`, `REGISTRY`, `layer_names()`): the config and
preset models, the resolver, series planning, checks, the store's tables and views, the report,
the emulator's answers and `doctor --probe`.

    from cgpreset import layers
    layers.use([Path("layers")])          # the shipped definitions plus a repo's own
    layers.spec("basis").kind             # "pair"
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path

from cgpreset.errors import ConfigError, did_you_mean
from cgpreset.layers.spec import (
    CHARTS,
    CHECKS,
    KINDS,
    UNITS,
    CheckId,
    Column,
    Detail,
    FieldSpec,
    HistoryFrom,
    IntervalFrom,
    Kind,
    LayerSpec,
    Setting,
)

#: The folder of the shipped definitions.
SHIPPED = Path(__file__).parent / "shipped"
#: A definition beside generated configs: `<name>.layer.yaml` (a config loader skips these).
DEFINITION_SUFFIX = ".layer.yaml"
#: A repo's own definitions, relative to the working directory.
REPO_LAYERS = Path("layers")

#: Layer ids are plain strings now that a repo can add its own.
LayerId = str


class Catalogue(Mapping[str, LayerSpec]):
    """Layer specs by name, in report order (the definitions' `order`, then name)."""

    def __init__(self, specs: Iterable[LayerSpec]) -> None:
        self._specs = {s.id: s for s in sorted(specs, key=lambda s: (s.order, s.id))}

    def __getitem__(self, name: str) -> LayerSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"Catalogue({', '.join(self._specs)})"

    def with_specs(self, extra: Iterable[LayerSpec]) -> Catalogue:
        """This catalogue plus `extra`. A name cgpreset ships is refused; the same definition found twice
        (a repo's `layers/x.yaml` and the `x.layer.yaml` generate copied beside the configs) is one layer,
        two that differ are an error naming both (the copy is stale: generate again)."""
        specs = dict(self._specs)
        for s in extra:
            other = specs.get(s.id)
            if other is not None and other.shipped:
                raise ConfigError(f"{s.source}: name: {s.id} is a layer cgpreset ships; give yours another name")
            if other is not None and replace(other, source="") != replace(s, source=""):
                raise ConfigError(f"{s.source}: name: {s.id} is also defined in {other.source}, differently "
                                  "(a copy beside the configs is out of date: run cgpreset generate)")
            specs.setdefault(s.id, s)
        return Catalogue(specs.values())


@cache
def shipped() -> Catalogue:
    """The definitions cgpreset ships (read once per process)."""
    from cgpreset.layers.definition import load_definition

    return Catalogue(load_definition(p, source="cgpreset") for p in sorted(SHIPPED.glob("*.yaml")))


_active: Catalogue | None = None
_lock = threading.Lock()


def catalogue() -> Catalogue:
    """The process's active catalogue: the shipped definitions unless `use` added a repo's own."""
    return _active if _active is not None else shipped()


def definition_files(places: Iterable[Path]) -> list[Path]:
    """Definition files under `places`: a folder's `*.yaml` (a `layers/` folder) or `*.layer.yaml`
    (beside configs), or a file as given; sorted, each once."""
    found: list[Path] = []
    for place in places:
        if place.is_dir():
            pattern = "*.yaml" if place.name == REPO_LAYERS.name else f"*{DEFINITION_SUFFIX}"
            found += sorted(p for p in place.glob(pattern) if p.is_file())
        elif place.is_file():
            found.append(place)
    seen: set[Path] = set()
    return [p for p in found if not (p.resolve() in seen or seen.add(p.resolve()))]  # type: ignore[func-returns-value]


def load(places: Iterable[Path]) -> Catalogue:
    """The shipped catalogue plus the definitions found under `places` (see definition_files)."""
    from cgpreset.layers.definition import load_definition

    return shipped().with_specs(load_definition(p) for p in definition_files(places))


def use(places: Iterable[Path] | Catalogue) -> Catalogue:
    """Make the shipped definitions plus those under `places` (or a built catalogue) the active one."""
    global _active
    built = places if isinstance(places, Catalogue) else load(places)
    with _lock:
        _active = built
    return built


def reset() -> None:
    """Back to the shipped definitions only (tests, a second command in one process)."""
    global _active
    with _lock:
        _active = None


class _Registry(Mapping[str, LayerSpec]):
    """The active catalogue under its historical name: `REGISTRY[name]`, `REGISTRY.values()`."""

    def __getitem__(self, name: str) -> LayerSpec:
        return catalogue()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(catalogue())

    def __len__(self) -> int:
        return len(catalogue())


REGISTRY: Mapping[str, LayerSpec] = _Registry()


def spec(layer: str) -> LayerSpec:
    """The spec of a layer; ConfigError (with the nearest name) for one the catalogue lacks."""
    try:
        return catalogue()[layer]
    except KeyError:
        names = layer_names()
        raise ConfigError(f"{layer} is not a layer{did_you_mean(layer, names)}; layers: {', '.join(names)} "
                          "(`cgpreset layers` lists them)") from None


def layer_names() -> tuple[str, ...]:
    """Every layer, in report order."""
    return tuple(catalogue())


def core_layers() -> tuple[str, ...]:
    """The "4 shots" of `health`: one minimal call per core layer (plus the macro ETF layer in `health`)."""
    return tuple(s.id for s in catalogue().values() if s.core)


def floor_layers() -> tuple[str, ...]:
    """Layers whose `interval` the plan's floor applies to."""
    return tuple(s.id for s in catalogue().values() if s.floor)


def coin_layers() -> tuple[str, ...]:
    """Coin-level layers: their `symbol` is the config's coin code (a pair layer takes an instrument id)."""
    return tuple(s.id for s in catalogue().values() if s.symbol_is_coin)


def range_bucket(layer: str, value: str) -> str:
    """The bar a snapshot taken over `range` value is stored at."""
    return spec(layer).range_buckets[value]


__all__ = [
    "CHARTS", "CHECKS", "DEFINITION_SUFFIX", "KINDS", "REGISTRY", "REPO_LAYERS", "SHIPPED", "UNITS", "Catalogue",
    "CheckId", "Column", "Detail", "FieldSpec", "HistoryFrom", "IntervalFrom", "Kind", "LayerId", "LayerSpec",
    "Setting", "catalogue", "core_layers", "coin_layers", "definition_files", "floor_layers", "layer_names", "load",
    "range_bucket", "reset", "shipped", "spec", "use",
]
