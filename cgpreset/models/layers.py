"""The `layers:` blocks of configs and presets, built from the layer catalogue (not one class a layer).

A layer's kind says which settings its block takes, in a config (what the resolver chose) and in
a preset (what the resolver starts from); a definition adds its own (the ETF flows' `asset`).
The models are built per catalogue and cached, so a repo's own layers validate, complete in
editors (the JSON Schema is these models') and fail with the same `file: field: problem` lines
as the shipped ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from cgpreset.layers import Catalogue, LayerSpec, catalogue
from cgpreset.models.fields import CoinCode, ExchangeName, InstrumentId, Interval, StrictInt

M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("names an exchange twice")
    return value


def _unique_exchanges_any_case(value: list[str]) -> list[str]:
    if len({v.lower() for v in value}) != len(value):
        raise ValueError("names an exchange twice")
    return value


def _unique_any_case(value: list[str]) -> list[str]:
    if len({v.lower() for v in value}) != len(value):
        raise ValueError("names an entry twice")
    return value


ExchangeList = Annotated[list[ExchangeName], Field(min_length=1), AfterValidator(_unique)]
PresetNames = Annotated[list[str], AfterValidator(_unique_any_case)]
PresetExchanges = Annotated[list[str], AfterValidator(_unique_exchanges_any_case)]


class LayerBlock(_Strict):
    """One layer of a coin config: the settings its kind takes (the resolver's choices)."""


class PresetBlock(_Strict):
    """One layer of a preset: what the resolver clones to every coin."""


class _LayersMixin:
    """What the config's and the preset's `layers:` share: the blocks by layer name."""

    def get(self, name: str) -> Any:
        """The block of layer `name`, or None when the config does not run it (or it is no layer)."""
        return getattr(self, name, None) if name in type(self).model_fields else None  # type: ignore[attr-defined]

    def enabled(self) -> list[str]:
        """The layers this config runs, in catalogue order."""
        return [n for n in type(self).model_fields if getattr(self, n) is not None]  # type: ignore[attr-defined]

    def items(self) -> list[tuple[str, Any]]:
        return [(n, getattr(self, n)) for n in self.enabled()]

    def primary_pair(self) -> tuple[str, Any] | None:
        """The coin's own pair: the first layer of kind `pair` the config runs, in catalogue order
        (funding in the shipped preset); what a bare trade channel streams. None without one."""
        return next(((n, b) for n, b in self.items() if catalogue()[n].kind == "pair"), None)


class LayersBase(_LayersMixin, _Strict):
    """The layers a config runs (at least one); a missing layer is not run."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"minProperties": 1})

    @model_validator(mode="after")
    def _not_empty(self) -> LayersBase:
        if not self.enabled():
            raise PydanticCustomError("no_layer", "no layer to run: enable at least one of {layers}",
                                      {"layers": ", ".join(type(self).model_fields)})
        return self


class PresetLayersBase(_LayersMixin, _Strict):
    """The layers of a preset; names are the catalogue's."""

    @model_validator(mode="before")
    @classmethod
    def _no_bare_layer(cls, data: Any) -> Any:
        """A preset's `name:` with nothing after it (YAML null) is refused, not taken to leave the
        layer out: a `{}` forgotten would drop a layer from every config without a word. (A
        config's null is a layer it does not run: its own dump writes that.)"""
        if isinstance(data, Mapping):
            bare = [str(name) for name, block in data.items() if block is None]
            if bare:
                raise PydanticCustomError(
                    "bare_layer", "{names}: no settings given: write `{first}: {}` for its defaults, or "
                    "remove the line to leave the layer out", {"names": ", ".join(bare), "first": bare[0]})
        return data


def _interval_field() -> tuple[Any, Any]:
    return (Interval | None, Field(default=None, description="overrides the config interval"))


def _extra_settings(spec: LayerSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in spec.settings:
        kind: Any = Literal[tuple(s.values)]
        out[s.name] = (kind, Field(default=s.default, description=s.description or None)) if s.default is not None \
            else (kind, Field(description=s.description or None))
    if spec.whole_history:
        out["history_days"] = (StrictInt | None, Field(default=None, ge=1, description="keep only the last N days"))
    if spec.macro and spec.windowed:
        out["interval"] = _interval_field()
    return out


def _range_field(spec: LayerSpec) -> tuple[Any, Any]:
    values = tuple(spec.range_buckets)
    default = "1h" if "1h" in values else values[0]
    kind: Any = Literal[values]
    return (kind, Field(default=default, description="the rolling window of the snapshot"))


#: Block models by (id of the spec, which side), with the spec kept alive beside its model.
_blocks: dict[tuple[int, str], tuple[LayerSpec, type[BaseModel]]] = {}


def _block(spec: LayerSpec, side: str, build: Any) -> Any:
    key = (id(spec), side)
    hit = _blocks.get(key)
    if hit is None or hit[0] is not spec:
        hit = _blocks[key] = (spec, build())
    return hit[1]


def block_model(spec: LayerSpec) -> type[LayerBlock]:
    """The config block of one layer, by its kind (cached)."""
    return _block(spec, "config", lambda: _config_block(spec))  # type: ignore[no-any-return]


def _config_block(spec: LayerSpec) -> type[LayerBlock]:
    fields: dict[str, Any]
    if spec.kind == "pair":
        fields = {"exchange": (ExchangeName, Field(description="CoinGlass exchange name, e.g. OKX")),
                  "symbol": (InstrumentId, Field(description="the venue's own instrument id, e.g. SOL-USDT-SWAP")),
                  "interval": _interval_field()}
    elif spec.kind == "coin":
        fields = {"symbol": (CoinCode, Field(description="the config's coin code, e.g. SOL or 1000PEPE")),
                  "interval": _interval_field()}
    elif spec.kind == "coin_exchanges":
        fields = {"symbol": (CoinCode, Field(description="the config's coin code")),
                  "exchange_list": (ExchangeList, Field(description="the exchanges aggregated over")),
                  "interval": _interval_field()}
    elif spec.kind == "exchange_snapshot":
        fields = {"symbol": (CoinCode, Field(description="the config's coin code")),
                  "range": _range_field(spec),
                  "exchanges": (list[ExchangeName], Field(min_length=1,
                                                          description='rows to keep; "All" is the total row'))}
    else:
        fields = _extra_settings(spec)
    return create_model(f"{_camel(spec.id)}Layer", __base__=LayerBlock, __doc__=spec.title, **fields)


def preset_block_model(spec: LayerSpec) -> type[PresetBlock]:
    """The preset block of one layer, by its kind (cached)."""
    return _block(spec, "preset", lambda: _preset_block(spec))  # type: ignore[no-any-return]


def _preset_block(spec: LayerSpec) -> type[PresetBlock]:
    fields: dict[str, Any]
    if spec.kind == "pair":
        fields = {
            "exchange": (str, Field(description="preferred CoinGlass exchange, e.g. OKX")),
            "symbol": (str, Field(description="the seed coin's production instrument id on `exchange`")),
            "quote": (str, Field(default="USDT", description="wanted quote asset")),
            "contract": (Literal["perpetual"], "perpetual"),
            "fallback_exchanges": (PresetNames, Field(
                default_factory=list, description="tried in order when `exchange` has no such contract")),
            "fallback_quotes": (PresetNames, Field(
                default_factory=list, description="other quotes, tried only when no venue lists `quote`")),
            "interval": (Interval | None, None)}
    elif spec.kind == "coin":
        fields = {"interval": (Interval | None, None)}
    elif spec.kind == "coin_exchanges":
        fields = {"exchange_list": (PresetExchanges, Field(min_length=1)), "interval": (Interval | None, None)}
    elif spec.kind == "exchange_snapshot":
        fields = {"range": _range_field(spec), "exchanges": (PresetExchanges, Field(min_length=1))}
    else:
        fields = _extra_settings(spec)
    return create_model(f"{_camel(spec.id)}Preset", __base__=PresetBlock, __doc__=spec.title, **fields)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


_layers: dict[tuple[int, str], tuple[Catalogue, type[BaseModel]]] = {}


def _cached(cat: Catalogue, what: str, build: Any) -> Any:
    key = (id(cat), what)
    hit = _layers.get(key)
    if hit is None or hit[0] is not cat:
        hit = _layers[key] = (cat, build())
    return hit[1]


def layers_model(cat: Catalogue | None = None) -> type[LayersBase]:
    """The `layers:` model of a config: one optional block per layer of the catalogue."""
    cat = cat or catalogue()
    fields: dict[str, Any] = {name: (block_model(s) | None, None) for name, s in cat.items()}
    return _cached(cat, "config", lambda: create_model(  # type: ignore[no-any-return]
        "Layers", __base__=LayersBase, __doc__=LayersBase.__doc__, **fields))


def preset_layers_model(cat: Catalogue | None = None) -> type[PresetLayersBase]:
    """The `layers:` model of a preset: one optional block per layer of the catalogue."""
    cat = cat or catalogue()
    fields: dict[str, Any] = {name: (preset_block_model(s) | None, None) for name, s in cat.items()}
    return _cached(cat, "preset", lambda: create_model(  # type: ignore[no-any-return]
        "PresetLayers", __base__=PresetLayersBase, __doc__=PresetLayersBase.__doc__, **fields))


def subclass_for(base: type[M], field: str, model: type[BaseModel], cat: Catalogue) -> type[M]:
    """`base` with its `field` typed as `model` (the catalogue's layers), cached per catalogue."""
    fields: dict[str, Any] = {field: (model, ...)}
    return _cached(cat, f"{base.__name__}.{field}", lambda: create_model(  # type: ignore[no-any-return]
        base.__name__, __base__=base, __doc__=base.__doc__, __module__=base.__module__, **fields))


def settings_of(block: BaseModel | None) -> Mapping[str, Any]:
    """A block's settings as a mapping (none for a missing block)."""
    return {} if block is None else {k: getattr(block, k) for k in type(block).model_fields}
