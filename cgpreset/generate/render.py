"""Rendering: one Jinja environment factory, and a pure render of preset + resolution -> config text.

Every rendered text is parsed back (`yaml.safe_load`) and validated as a CoinConfig before
anything is written, so a template bug is a ConfigError naming the template and the coin.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import ValidationError

from cgpreset._io import format_validation, read_text
from cgpreset._yaml import MAX_FILE_BYTES, parse, to_yaml
from cgpreset.errors import ConfigError
from cgpreset.generate.resolver import CoinResolution
from cgpreset.generate.writer import GENERATED_MARK as GENERATED_MARK  # re-exported: the mark render writes
from cgpreset.models.config import CoinConfig, Provenance
from cgpreset.models.preset import Preset

DEFAULT_TEMPLATE = "coin.yaml.j2"
TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2")


def make_env(templates_dir: Path) -> jinja2.Environment:
    """Jinja environment for YAML templates: missing variables are errors, output is LF text.

    Sandboxed: a template is user input (a repo's `templates/`), and plain Jinja lets it reach
    Python (`cycler.__init__.__globals__.os.popen('id')` runs a command); the immutable sandbox
    refuses underscore attributes and unsafe calls, and changing the context's lists and dicts.
    """
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,  # the file ends where the template ends
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # YAML, not HTML
        newline_sequence="\n",
        auto_reload=False,
    )
    env.filters["yaml"] = to_yaml
    return env


@dataclass(frozen=True)
class TemplateSet:
    """A loaded template directory: the environment, the main template and a hash of all of them."""

    env: jinja2.Environment
    name: str  # e.g. coin.yaml.j2
    source: str  # for headers and provenance, e.g. templates/coin.yaml.j2
    sha256: str  # over every template file (name and bytes), so a partial's edit counts too
    root: Path  # the directory, to name the template file a render failed in


def load_templates(templates_dir: Path, name: str = DEFAULT_TEMPLATE, *, source: str | None = None) -> TemplateSet:
    """Read a template directory once; ConfigError if it or its main template is missing."""
    if not templates_dir.is_dir():
        raise ConfigError(f"{templates_dir}: templates directory not found")
    files = sorted(
        p for p in templates_dir.rglob("*") if p.is_file() and p.suffix in TEMPLATE_SUFFIXES
    )
    if not (templates_dir / name).is_file():
        raise ConfigError(f"{templates_dir / name}: template not found")
    digest = hashlib.sha256()
    for path in files:
        raw = read_text(path, what="template", max_bytes=MAX_FILE_BYTES).encode("utf-8")
        digest.update(path.relative_to(templates_dir).as_posix().encode() + b"\0")
        digest.update(raw + b"\0")
    env = make_env(templates_dir)
    try:
        env.get_template(name)  # compile now: a syntax error names the template before any coin
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{exc.filename or name}: line {exc.lineno}: template error: {exc.message}") from None
    return TemplateSet(env=env, name=name, source=source or name, sha256=digest.hexdigest(), root=templates_dir)


@dataclass(frozen=True)
class RenderedFile:
    """One coin's config, rendered and validated, not yet written."""

    coin: str
    filename: str
    text: str
    config: CoinConfig


def coin_context(
    preset: Preset, res: CoinResolution, provenance: Provenance, schema_ref: str
) -> dict[str, Any]:
    """Everything a coin template may use."""
    return {
        "coin": res.coin,
        "plan": preset.plan.value,
        "interval": preset.interval,
        "history_days": preset.history_days,
        "layers": res.layers,
        "health": preset.health.model_dump(),
        "stream": preset.stream.model_dump(),
        "notes": list(res.notes),
        "provenance": provenance.model_dump(exclude_none=True),  # no `source: null` from an older snapshot
        "schema_ref": schema_ref,
        "resolution": res.as_dict(),
    }


def render_coin(
    templates: TemplateSet,
    preset: Preset,
    res: CoinResolution,
    *,
    provenance: Provenance,
    schema_ref: str,
) -> RenderedFile:
    """Render and validate one coin's config. Pure: no file is read or written."""
    where = f"{templates.source} (coin {res.coin})"
    try:
        text = templates.env.get_template(templates.name).render(
            coin_context(preset, res, provenance, schema_ref)
        )
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{exc.filename or templates.name}: line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise ConfigError(f"{_failed_at(exc, templates, res.coin) or where}: template error: {exc}"
                          + (" (templates run in a sandbox)" if isinstance(exc, SecurityError) else "")) from None
    text = text.rstrip("\n") + "\n"
    try:
        data = parse(text, f"{where}: rendered output")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: rendered invalid YAML:{line} {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: rendered YAML is not a mapping")
    missing = [name for name in res.layers if name not in (data.get("layers") or {})]
    if missing:  # a layer the template does not spell out: rendered from its definition's settings
        text = add_layer_blocks(text, {name: res.layers[name] for name in missing}, where)
        data = parse(text, f"{where}: rendered output")
    try:
        config = CoinConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: rendered an invalid config: {format_validation(exc)}") from None
    return RenderedFile(coin=res.coin, filename=res.filename, text=text, config=config)


def layer_block(name: str, settings: dict[str, Any]) -> str:
    """One layer's block as the shipped partial writes them: its settings, one per line, inline
    values; `{}` for a layer without settings (a bare `name:` is null: a layer the config does not run)."""
    if not settings:
        return f"  {name}: {{}}\n"
    return f"  {name}:\n" + "".join(f"    {key}: {to_yaml(value)}\n" for key, value in settings.items())


def add_layer_blocks(text: str, blocks: dict[str, dict[str, Any]], where: str) -> str:
    """`text` with these layers' blocks at the end of its top-level `layers:` mapping.

    A template that renders the six layers it knows (the shipped partial, or a team's copy of an
    older one) thus still writes every layer a preset has: the ones it does not spell out come
    from their definitions. A `layers:` it writes in flow style (other than `{}`) is refused: the
    block cannot be placed, so the template must render those layers itself.
    """
    lines = text.splitlines(keepends=True)
    head = next((i for i, line in enumerate(lines) if line.startswith("layers:")), None)
    new = "".join(layer_block(name, settings) for name, settings in blocks.items())
    if head is None:
        raise ConfigError(f"{where}: the template writes no top-level `layers:`; cannot add {', '.join(blocks)}")
    rest = lines[head][len("layers:"):].strip()
    if rest not in ("", "{}"):
        raise ConfigError(f"{where}: the template writes `layers:` in flow style; render "
                          f"{', '.join(blocks)} in it (or write layers as a block)")
    if rest == "{}":
        lines[head] = "layers:\n"
    end = head + 1
    while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
        end += 1
    while end > head + 1 and not lines[end - 1].strip():  # blank lines stay after the added blocks
        end -= 1
    return "".join([*lines[:end], new, *lines[end:]])


def _failed_at(exc: BaseException, templates: TemplateSet, coin: str) -> str | None:
    """`templates/partials/x.yaml.j2: line 3 (coin BTC)`: the template line a render failed on,
    from the traceback (Jinja puts each template's own file and line in it), innermost first."""
    root = templates.root.resolve()
    found = None
    tb = exc.__traceback__
    while tb is not None:
        name = Path(tb.tb_frame.f_code.co_filename).resolve()
        if name.is_relative_to(root):
            found = (name.relative_to(root).as_posix(), tb.tb_lineno)
        tb = tb.tb_next
    if found is None:
        return None
    folder = templates.source.rsplit("/", 1)[0] if "/" in templates.source else ""
    return f"{folder + '/' if folder else ''}{found[0]}: line {found[1]} (coin {coin})"


def render_all(
    templates: TemplateSet,
    preset: Preset,
    coins: tuple[CoinResolution, ...] | list[CoinResolution],
    *,
    provenance: Provenance,
    schema_ref: str,
) -> list[RenderedFile]:
    """Render every coin (sorted by file name); the first bad one raises before anything is written."""
    out = [render_coin(templates, preset, r, provenance=provenance, schema_ref=schema_ref) for r in coins]
    return sorted(out, key=lambda f: f.filename)
