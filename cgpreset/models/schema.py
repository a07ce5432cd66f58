"""JSON Schema of the per-coin config (CoinConfig), closed at every level.

Editors validate generated files through the `# yaml-language-server: $schema=...` header, so
every object node gets `additionalProperties: false`: a typo'd key anywhere is flagged, not
ignored (Helm's lesson: values files that take any key let typos pass unseen).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cgpreset._io import problem_line
from cgpreset._yaml import read_yaml
from cgpreset.errors import ConfigError, did_you_mean
from cgpreset.models.config import CoinConfig, config_model, config_paths, plan_problems, use_layers_near
from cgpreset.models.preset import ALL_ROW
from cgpreset.plans import Plan

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: File name `generate` writes next to its snapshot, inside DIR/.cgpreset/.
SCHEMA_NAME = "coin-config.schema.json"


def _close(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for value in node:
            _close(value)


def coin_config_schema() -> dict[str, Any]:
    """The JSON Schema of CoinConfig; plan feasibility is checked by `cgpreset validate`, not here."""
    schema = config_model().model_json_schema(mode="validation")
    _close(schema)
    return {"$schema": SCHEMA_DIALECT, **schema}


def schema_text() -> str:
    """The schema as stable text: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(coin_config_schema(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def exchange_problems(cfg: CoinConfig, known: Collection[str]) -> list[str]:
    """`field: OKK is not a CoinGlass exchange (did you mean OKX?)` for every exchange the config
    names that `known` lacks. Exact spelling: the API's exchange names are case-sensitive. "All",
    the total row of a liquidation breakdown (`exchanges`), is not an exchange."""
    problems: list[str] = []
    for layer in cfg.layers.enabled():
        for name, value in getattr(cfg.layers, layer):
            if name == "exchange":
                named = [(f"layers.{layer}.exchange", value)]
            elif name in ("exchange_list", "exchanges"):
                named = [(f"layers.{layer}.{name}[{i}]", v) for i, v in enumerate(value)
                         if not (name == "exchanges" and v == ALL_ROW)]
            else:
                continue
            problems += [f"{where}: {ex} is not a CoinGlass exchange{did_you_mean(ex, known)}"
                         for where, ex in named if ex not in known]
    return problems


def validate_file(path: Path, exchanges: Collection[str] | None = None) -> list[str]:
    """Every problem in one config file as `file: field: problem`; empty when it is valid.

    Worded as `load_config` words its first problem (_io.problem_line), so `validate` and
    `run-preset` / `health` say the same thing about the same file.

    Schema problems come first; plan feasibility (an interval below the plan's floor, history
    deeper than the plan keeps) and, given `exchanges` (the CoinGlass exchange names), the
    exchanges the config names are checked once the structure is right, and list every problem.
    """
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        return [str(exc)]
    if not isinstance(data, dict):
        return [f"{path}: expected a mapping at the top level"]
    try:
        cfg = CoinConfig.model_validate(data)
        return [f"{path}: {p}" for p in exchange_problems(cfg, exchanges)] if exchanges is not None else []
    except ValidationError as exc:
        errors = exc.errors()
    structural = [e for e in errors if e["loc"]]
    if structural:
        return [f"{path}: {problem_line(e, config_model())}" for e in structural]
    # Only the model-level feasibility check failed: validate on a plan that allows everything,
    # then ask for every problem on the real plan (the validator stops at the first one).
    try:
        relaxed = CoinConfig.model_validate({**data, "plan": Plan.PROFESSIONAL.value, "history_days": 1})
    except ValidationError:
        return [f"{path}: {problem_line(e, config_model())}" for e in errors]
    real = relaxed.model_copy(update={"plan": Plan(data["plan"]), "history_days": data["history_days"]})
    wrong = exchange_problems(real, exchanges) if exchanges is not None else []
    return [f"{path}: {problem}" for problem in plan_problems(real) + wrong]


def validate_paths(paths: list[Path], exchanges: Callable[[Path], Collection[str]] | None = None
                   ) -> tuple[list[Path], list[str]]:
    """(files checked, problems) for files and directories (their *.yaml / *.yml files).

    A file reached twice (`DIR DIR/sol.yaml`) is checked once, where it was first seen.
    `exchanges(config file)` gives the exchange names to check that config against (a
    ConfigError it raises, e.g. a damaged snapshot, is listed once as a problem).
    """
    files: list[Path] = []
    seen: set[Path] = set()
    problems: list[str] = []
    try:  # the layer definitions beside the configs (and the repo's own) are what they are checked against
        use_layers_near(paths)
    except ConfigError as exc:
        problems.append(str(exc))
    for p in paths:
        try:
            found = config_paths([p])
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        for f in found:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                files.append(f)
    for f in files:
        try:
            known = exchanges(f) if exchanges is not None else None
        except ConfigError as exc:
            problems.append(str(exc))
            known = None
        problems += validate_file(f, known)
    return files, list(dict.fromkeys(problems))
