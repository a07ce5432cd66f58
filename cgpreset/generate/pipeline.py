"""The `resolve` / `generate` pipeline as a Python API: load, discover once, resolve, render, write.

Everything is rendered and validated in memory first; DIR is touched only after every coin has
rendered into a valid config, so bad input leaves DIR exactly as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cgpreset import layers
from cgpreset._io import DEFAULT_PRESET, DEFAULT_TEMPLATES, DEFAULT_WATCHLIST, read_text
from cgpreset._yaml import read_yaml
from cgpreset.errors import ConfigError, FindingsError, MalformedResponseError
from cgpreset.generate.discovery import STATE_DIR, Snapshot, discover, load_snapshot, snapshot_path
from cgpreset.generate.render import DEFAULT_TEMPLATE, RenderedFile, TemplateSet, load_templates, render_all
from cgpreset.generate.resolver import Resolution, plan_problems, resolve
from cgpreset.generate.writer import DRIFT, GENERATED_MARK, Change, OutputFile, apply_changes, plan_changes
from cgpreset.models.config import Provenance, api_source
from cgpreset.models.preset import (
    InputFile,
    Preset,
    Watchlist,
    display_path,
    load_preset,
    load_watchlist,
    locate,
    where,
)
from cgpreset.models.schema import SCHEMA_NAME, schema_text
from cgpreset.plans import Plan

if TYPE_CHECKING:
    from cgpreset.generate.kube import KubeOptions

SCHEMA_REF = f"{STATE_DIR}/{SCHEMA_NAME}"


@dataclass(frozen=True)
class Inputs:
    """The committed inputs, loaded and validated."""

    preset: Preset
    preset_source: str  # display path, e.g. presets/sol.yaml
    preset_sha256: str
    watchlist: Watchlist
    watchlist_source: str
    preset_where: str = "preset"  # names for messages (full paths): the sources are for provenance
    watchlist_where: str = "watchlist"


def _input(given: Path | InputFile) -> InputFile:
    return given if isinstance(given, InputFile) else InputFile(given, display_path(given))


def load_inputs(preset_file: Path | InputFile | None = None, watchlist_file: Path | InputFile | None = None) -> Inputs:
    """Read the preset and the watchlist (default: presets/sol.yaml and presets/watchlist.yaml,
    else the copies shipped with cgpreset); ConfigError names the file and field.

    Provenance names each by the `InputFile`'s name: the shipped copies as `cgpreset:<path>`.
    """
    preset_in = locate(None, DEFAULT_PRESET) if preset_file is None else _input(preset_file)
    watchlist_in = locate(None, DEFAULT_WATCHLIST) if watchlist_file is None else _input(watchlist_file)
    layers.use([layers.REPO_LAYERS])  # the repo's own layers join the shipped ones before the preset names them
    preset = load_preset(preset_in.path)
    watchlist = load_watchlist(watchlist_in.path)
    return Inputs(
        preset=preset,
        preset_source=preset_in.name,
        preset_sha256=hashlib.sha256(preset_in.path.read_bytes()).hexdigest(),
        watchlist=watchlist,
        watchlist_source=watchlist_in.name,
        preset_where=where(preset_in.path),
        watchlist_where=where(watchlist_in.path),
    )


@dataclass(frozen=True)
class SnapshotSource:
    """The snapshot used and where it came from."""

    snapshot: Snapshot
    origin: str  # "discovered" or the file it was read from
    plan_source: str = "detected from the key"  # a discovered snapshot's plan: how the client knew it

    @property
    def discovered(self) -> bool:
        return self.origin == "discovered"

    def as_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "sha256": self.snapshot.sha256(),
            "fetched_at": self.snapshot.meta.fetched_at,
            "source": self.snapshot.meta.source,
            "plan": self.snapshot.meta.plan.value if self.snapshot.meta.plan else None,
            "ranking": self.snapshot.ranking.source if self.snapshot.ranking else None,
        }


def get_snapshot(
    inputs: Inputs,
    *,
    client: Callable[[], Any],
    offline: bool,
    snapshot: Path | None,
    out_dir: Path | None,
    plan_override: str | None = None,
    source: str | None = None,
) -> SnapshotSource:
    """Read the snapshot (offline or --snapshot) or discover a fresh one with one pass over the API.

    A fresh snapshot records `source` (`emulator` or `api:<host>`; by default the client's host)."""
    if snapshot is not None or offline:
        path = snapshot or (snapshot_path(out_dir) if out_dir is not None else None)
        if path is None:
            raise ConfigError("--offline needs --snapshot PATH or --out DIR (for DIR/.cgpreset/discovery.json)")
        return SnapshotSource(load_snapshot(path), display_path(path))
    wl = inputs.watchlist
    if plan_override and plan_override != "auto":  # refuse before the first request, not after discovery
        check_plan(inputs, PlanChoice(Plan(plan_override), "--plan"))
    api = client()
    key_plan = api.plan()
    # Check the preset against the key's plan before spending budget on the ranking calls.
    if not plan_override or plan_override == "auto":
        check_plan(inputs, PlanChoice(key_plan, _key_plan_source(api)))
    snap = discover(api, ranking=wl.top is not None, candidates=wl.candidates, plan=key_plan,
                    source=source or _client_source(api))
    ranking = snap.ranking
    if wl.top is not None and ranking is not None and len(ranking.coins) < wl.top:
        # a short ranking would shrink the watchlist and (with --prune) delete configs: an API problem
        raise MalformedResponseError(
            f"the open-interest ranking ({ranking.source}) has {len(ranking.coins)} coin(s), fewer than top "
            f"({wl.top}): an incomplete answer; nothing written")
    return SnapshotSource(snap, "discovered", _key_plan_source(api))


def _key_plan_source(api: Any) -> str:
    """How the client knows the key's plan: CGPRESET_PLAN when that sets it, else the API told it."""
    settings = getattr(api, "settings", None)
    return "CGPRESET_PLAN" if getattr(settings, "plan", "auto") != "auto" else "detected from the key"


def _client_source(api: Any) -> str | None:
    """`api:<host>` of a client's base URL (None for a client without one, e.g. a test's fake)."""
    base_url = getattr(api, "base_url", None)
    return api_source(base_url) if isinstance(base_url, str) else None


@dataclass(frozen=True)
class PlanChoice:
    """The plan that the preset is checked against, and why that one."""

    plan: Plan
    source: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.plan.value, "source": self.source}


def choose_plan(override: str | None, inputs: Inputs, src: SnapshotSource) -> PlanChoice:
    """--plan wins; else the key's plan (detected now, or recorded in the snapshot); else the preset's."""
    if override and override != "auto":
        return PlanChoice(Plan(override), "--plan")
    if src.snapshot.meta.plan is not None:
        how = src.plan_source if src.discovered else f"recorded in {src.origin}"
        return PlanChoice(src.snapshot.meta.plan, how)
    return PlanChoice(inputs.preset.plan, f"the preset's plan ({inputs.preset_where})")


def check_plan(inputs: Inputs, choice: PlanChoice) -> None:
    """ConfigError naming preset file and field when the plan cannot serve the preset."""
    problems = plan_problems(inputs.preset, choice.plan)
    if problems:
        hint = "" if choice.source == "--plan" else "; pass --plan to generate for another plan"
        raise ConfigError(
            "; ".join(f"{inputs.preset_where}: {p}" for p in problems)
            + f" (plan {choice.plan.value}: {choice.source}{hint})"
        )


@dataclass
class ResolveResult:
    """What `resolve` shows."""

    inputs: Inputs
    source: SnapshotSource
    plan: PlanChoice
    resolution: Resolution

    def as_dict(self) -> dict[str, Any]:
        return {
            "preset": self.inputs.preset_source,
            "watchlist": self.inputs.watchlist_source,
            "plan": self.plan.as_dict(),
            "snapshot": self.source.as_dict(),
            **self.resolution.as_dict(),
        }


def run_resolve(
    inputs: Inputs,
    *,
    client: Callable[[], Any],
    offline: bool = False,
    snapshot: Path | None = None,
    out_dir: Path | None = None,
    plan: str | None = None,
    source: str | None = None,
) -> ResolveResult:
    """Discover (or read the snapshot), check the plan, and resolve the watchlist; `source` names
    whom a fresh discovery asked (get_snapshot)."""
    src = get_snapshot(
        inputs, client=client, offline=offline, snapshot=snapshot, out_dir=out_dir, plan_override=plan,
        source=source,
    )
    choice = choose_plan(plan, inputs, src)
    check_plan(inputs, choice)
    resolution = resolve(
        inputs.preset,
        inputs.watchlist,
        src.snapshot,
        preset_source=inputs.preset_where,
        watchlist_source=inputs.watchlist_where,
    )
    return ResolveResult(inputs, src, choice, resolution)


@dataclass
class GenerateResult:
    """What `generate` did (or, with check, would do)."""

    resolved: ResolveResult
    rendered: list[RenderedFile]
    changes: list[Change]
    out_dir: Path
    check: bool
    written: int = 0

    @property
    def drift(self) -> list[Change]:
        return [c for c in self.changes if c.status in DRIFT]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.resolved.as_dict(),
            "out": self.out_dir.as_posix(),
            "check": self.check,
            "changes": [c.as_dict() for c in self.changes],
            "written": self.written,
        }


def build_outputs(
    resolved: ResolveResult, templates: TemplateSet, *, out_dir: Path
) -> tuple[list[RenderedFile], list[OutputFile]]:
    """Render every coin (in memory) plus the schema, and the snapshot if it was just discovered."""
    snap = resolved.source.snapshot
    provenance = Provenance(
        preset=resolved.inputs.preset_source,
        preset_sha256=resolved.inputs.preset_sha256,
        template=templates.source,
        template_sha256=templates.sha256,
        discovery_sha256=snap.sha256(),
        source=snap.meta.source,
    )
    rendered = render_all(
        templates, resolved.inputs.preset, resolved.resolution.coins, provenance=provenance, schema_ref=SCHEMA_REF
    )
    files = [OutputFile(r.filename, r.text.encode("utf-8")) for r in rendered]
    files += definition_files(rendered)
    files.append(OutputFile(SCHEMA_REF, schema_text().encode("utf-8")))
    if resolved.source.discovered:
        files.append(OutputFile(f"{STATE_DIR}/{snapshot_path(Path()).name}", _snapshot_bytes(snap, out_dir)))
    return rendered, files


def definition_files(rendered: list[RenderedFile]) -> list[OutputFile]:
    """`<name>.layer.yaml` beside the configs for each layer of a repo's own that they run: its
    definition as written, under a generated header, so run-preset, validate --offline and a pod's
    ConfigMap find it with the configs (the shipped layers come with cgpreset)."""
    used = sorted({name for r in rendered for name in r.config.layers.enabled()})
    out: list[OutputFile] = []
    for name in used:
        ls = layers.spec(name)
        if ls.shipped:
            continue
        origin = Path(ls.source)
        text = read_text(origin).removeprefix(definition_header(origin.as_posix()))  # a copy of a copy: once
        out.append(OutputFile(f"{name}{layers.DEFINITION_SUFFIX}",
                              (definition_header(origin.as_posix()) + text).encode("utf-8")))
    return out


def definition_header(origin: str) -> str:
    """The first line of a layer definition `generate` copies beside the configs."""
    return (f"# {GENERATED_MARK}{origin} (a layer definition) — do not edit; change it there and "
            "run cgpreset generate.\n")


def _snapshot_bytes(snap: Snapshot, out_dir: Path) -> bytes:
    """The fresh snapshot, unless the one on disk has the same content and source (then keep it: same
    bytes; a snapshot of an older release, without a source, is rewritten to record it)."""
    path = snapshot_path(out_dir)
    if path.is_file():
        try:
            old = load_snapshot(path)
        except ConfigError:
            old = None
        if old is not None and old.sha256() == snap.sha256() and old.meta.source == snap.meta.source:
            return path.read_bytes()
    return snap.to_json().encode("utf-8")


def strict_problems(resolution: Resolution) -> list[str]:
    """Dropped coins and dropped layers, one line each (what --strict fails on)."""
    lines = [f"{d.requested}: dropped: {d.reason}" for d in resolution.dropped]
    for c in resolution.coins:
        lines += [f"{c.coin}: {layer}: layer dropped: {why}" for layer, why in sorted(c.dropped_layers.items())]
    return lines


def run_generate(
    inputs: Inputs,
    templates: TemplateSet,
    *,
    out_dir: Path,
    client: Callable[[], Any],
    offline: bool = False,
    snapshot: Path | None = None,
    plan: str | None = None,
    check: bool = False,
    prune: bool = False,
    strict: bool = False,
    replace_preset: bool = False,
    kubernetes: KubeOptions | None = None,
    source: str | None = None,
) -> GenerateResult:
    """Resolve, render and validate everything in memory; then write (or, with check, compare).

    Configs in DIR generated from another preset are not overwritten unless `replace_preset`.
    `source` names whom a fresh discovery asked (`emulator` or `api:<host>`, default the client's host):
    the snapshot and every config's provenance record it."""
    resolved = run_resolve(inputs, client=client, offline=offline, snapshot=snapshot, out_dir=out_dir, plan=plan,
                           source=source)
    if strict:
        problems = strict_problems(resolved.resolution)
        if problems:
            raise FindingsError("--strict: " + "; ".join(problems))
    rendered, files = build_outputs(resolved, templates, out_dir=out_dir)
    if kubernetes is not None:  # DIR/kubernetes/: a kustomize base, checked and diffed like the configs
        from cgpreset.generate.kube import kube_files

        files += kube_files(rendered, resolved.plan.plan, source=resolved.inputs.preset_source,
                            out=out_dir.as_posix(), options=kubernetes, definitions=definition_files(rendered))
    foreign = [] if replace_preset else foreign_configs(out_dir, files, resolved.inputs.preset_source)
    if foreign:
        name, old = foreign[0]
        raise ConfigError(
            f"{(out_dir / name).as_posix()}: generated from {old}, but this run's preset is "
            f"{resolved.inputs.preset_source} ({len(foreign)} config(s) like it): nothing written; "
            f"run from the repo that holds {old}, pass --preset, or --replace-preset to overwrite")
    changes = plan_changes(out_dir, files, prune=prune)
    result = GenerateResult(resolved, rendered, changes, out_dir, check)
    if not check:
        result.written = apply_changes(out_dir, changes)
    return result


def open_templates(templates: Path | InputFile | None = None, name: str = DEFAULT_TEMPLATE) -> TemplateSet:
    """Load the template directory (default: templates/, else the shipped copy), named for headers
    as <dir>/<template> (cgpreset:templates/... for the shipped copy)."""
    found = locate(None, DEFAULT_TEMPLATES) if templates is None else _input(templates)
    if found.shipped:
        return load_templates(found.path, name, source=f"{found.name}/{name}")
    try:
        where = found.path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        where = found.path.name  # outside cwd: no machine-specific path
    return load_templates(found.path, name, source=f"{where}/{name}")


def foreign_configs(out_dir: Path, files: list[OutputFile], preset_source: str) -> list[tuple[str, str]]:
    """Configs in DIR that this run would change but that were generated from another preset:
    (file, its preset), read from each file's provenance."""
    found = []
    for f in files:
        path = out_dir / f.path
        if not f.path.endswith(".yaml") or "/" in f.path or not path.is_file():
            continue
        try:
            doc = read_yaml(path)
        except ConfigError:
            continue  # not a config of ours: the writer's own checks speak for it
        prov = doc.get("provenance") if isinstance(doc, dict) else None
        old = prov.get("preset") if isinstance(prov, dict) else None
        if isinstance(old, str) and old != preset_source and path.read_bytes() != f.content:
            found.append((f.path, old))
    return found
