"""JSON Schema of the per-coin config (CoinConfig), closed at every level.

Editors validate generated files through the `# yaml-language-server: $schema=...` header, so
every object node gets `additionalProperties: false`: a typo'd key anywhere is flagged, not
ignored (the Helm lesson, ANCHORS.md §3 lesson 5).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cgpreset._io import problem_line
from cgpreset._yaml import read_yaml
from cgpreset.errors import ConfigError
from cgpreset.models.config import CoinConfig, config_paths, plan_problems
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
    schema = CoinConfig.model_json_schema(mode="validation")
    _close(schema)
    return {"$schema": SCHEMA_DIALECT, **schema}


def schema_text() -> str:
    """The schema as stable text: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(coin_config_schema(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def validate_file(path: Path) -> list[str]:
    """Every problem in one config file as `file: field: problem`; empty when it is valid.

    Worded as `load_config` words its first problem (_io.problem_line), so `validate` and
    `run-preset` / `health` say the same thing about the same file.

    Schema problems come first; plan feasibility (an interval below the plan's floor, history
    deeper than the plan keeps) is checked once the structure is right, and lists every problem.
    """
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        return [str(exc)]
    if not isinstance(data, dict):
        return [f"{path}: expected a mapping at the top level"]
    try:
        CoinConfig.model_validate(data)
        return []
    except ValidationError as exc:
        errors = exc.errors()
    structural = [e for e in errors if e["loc"]]
    if structural:
        return [f"{path}: {problem_line(e, CoinConfig)}" for e in structural]
    # Only the model-level feasibility check failed: validate on a plan that allows everything,
    # then ask for every problem on the real plan (the validator stops at the first one).
    try:
        relaxed = CoinConfig.model_validate({**data, "plan": Plan.PROFESSIONAL.value, "history_days": 1})
    except ValidationError:
        return [f"{path}: {problem_line(e, CoinConfig)}" for e in errors]
    real = relaxed.model_copy(update={"plan": Plan(data["plan"]), "history_days": data["history_days"]})
    return [f"{path}: {problem}" for problem in plan_problems(real)]


def validate_paths(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """(files checked, problems) for files and directories (their *.yaml / *.yml files).

    A file reached twice (`DIR DIR/sol.yaml`) is checked once, where it was first seen.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    problems: list[str] = []
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
        problems += validate_file(f)
    return files, problems
