"""The settings a Kubernetes base records in itself, so that it never goes stale.

`generate --kubernetes` writes them to OUT/kubernetes/cgpreset-base.yaml. From then on a plain
`generate` (and `--check`, `--diff`) rebuilds the base from the configs and these settings, with no
flag: a changed interval reaches the CronJob's schedule and the ConfigMap in the same commit as
the configs, and `--kubernetes` without `--shards` keeps the recorded shard count. A flag changes
its setting explicitly. A base written before the file existed is read from its CronJob (shards).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cgpreset._io import read_text
from cgpreset._yaml import MAX_FILE_BYTES, load_text, read_yaml
from cgpreset.errors import ConfigError, UsageError
from cgpreset.generate.cron import CronError, period_seconds
from cgpreset.generate.writer import is_generated
from cgpreset.redact import redact_url

KUBE_DIR = "kubernetes"
SETTINGS_FILE = "cgpreset-base.yaml"
SCHEMA = "cgpreset.kubernetes-base/1"
AUTO = "auto"
OFF = "off"
#: The prometheus-community chart's Pushgateway, installed as `prometheus-pushgateway` in `monitoring`.
DEFAULT_PUSHGATEWAY = "http://prometheus-pushgateway.monitoring:9091"
MAX_SHARDS = 64

#: An image reference with a tag or a digest: [registry[:port]/]name[/name...][:tag][@sha256:digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY = r"(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?"
IMAGE = re.compile(rf"(?P<name>{_REGISTRY}{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>[\w][\w.-]{{0,127}}))?"
                   r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?")
DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class BaseSettings:
    """What the base needs beyond the configs; every field has a flag of the same name."""

    shards: int = 1
    schedule: str = AUTO  # auto: a few minutes after each bar of the configs' finest interval closes
    image: str = AUTO  # auto: cgpreset:<the version of cgpreset that writes the base>
    pushgateway: str = DEFAULT_PUSHGATEWAY  # off: no push, and no alerts on the runs
    store_port: int = 5432  # the PostgreSQL port the NetworkPolicy lets the pods reach
    monitoring_namespace: str = "monitoring"  # where Prometheus runs: it alone may scrape the stream


FLAGS = {f.name: "--" + f.name.replace("_", "-") for f in fields(BaseSettings)}


def _int(value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"must be a whole number from {low} to {high}, not {value!r}")
    return value


def _schedule(value: object) -> str:
    if value != AUTO:
        try:
            period_seconds(str(value))
        except CronError as exc:
            raise ValueError(f"{AUTO}, or a cron line in UTC: {exc}") from None
    return str(value)


def _image(value: object) -> str:
    if value == AUTO:
        return AUTO
    found = IMAGE.fullmatch(str(value))
    if found is None:
        raise ValueError(f"{value!r} is not an image reference (REGISTRY/NAME:TAG or NAME@sha256:DIGEST)")
    if found["digest"] is None and found["tag"] in (None, "latest"):
        raise ValueError(f"{value!r}: name a version tag or a digest: a floating tag (latest) runs whatever "
                         "was pushed last, and a missing tag means latest")
    return str(value)


def _pushgateway(value: object) -> str:
    """The base's Pushgateway URL. One that carries credentials is refused (and never echoed): the
    base is committed, and the URL goes into the CronJob's env, the NetworkPolicy and the alerts'
    text; a gateway behind basic auth gets CGPRESET_PUSHGATEWAY from a Secret (README)."""
    text = str(value)
    if text == OFF:
        return OFF
    parts = urlsplit(text)
    if "@" in parts.netloc:
        raise ValueError(f"{redact_url(text)} carries credentials, which the base would write into committed "
                         "manifests: give the URL without them and set CGPRESET_PUSHGATEWAY (with them) from a "
                         "Secret in your overlay (README: Deploy)")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0 or parts.query or parts.fragment:
        raise ValueError(f"{text!r} is not http(s)://host[:port][/path]")
    return text.rstrip("/")


def _namespace(value: object) -> str:
    if not isinstance(value, str) or DNS_LABEL.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a namespace name (lower-case letters, digits and -)")
    return value


CHECKS = {"shards": lambda v: _int(v, 1, MAX_SHARDS), "schedule": _schedule, "image": _image,
          "pushgateway": _pushgateway, "store_port": lambda v: _int(v, 1, 65535), "monitoring_namespace": _namespace}


def pushgateway_port(url: str) -> int:
    """The TCP port the pods reach the Pushgateway on (the URL's, else the scheme's)."""
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def image_parts(settings: BaseSettings, version: str) -> tuple[str, str, str | None]:
    """(name, tag, digest) for kustomize's `images`: `auto` is cgpreset:<version> (a tag has no `+`)."""
    if settings.image == AUTO:
        return "cgpreset", version.replace("+", "-"), None
    found = IMAGE.fullmatch(settings.image)
    assert found is not None  # checked when the setting was read
    return found["name"], found["tag"] or "", found["digest"]


def settings_path(out_dir: Path) -> Path:
    return out_dir / KUBE_DIR / SETTINGS_FILE


def parse(text: str, where: str) -> BaseSettings:
    """The settings in a cgpreset-base.yaml; ConfigError naming the file and the field."""
    doc = load_text(text, where)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ConfigError(f"{where}: not a cgpreset base's settings (schema: {SCHEMA} expected)")
    values: dict[str, Any] = {}
    for key, value in doc.items():
        if key in ("schema", "written_by"):
            continue
        if key not in CHECKS:
            raise ConfigError(f"{where}: {key}: unknown setting (known: {', '.join(CHECKS)})")
        try:
            values[key] = CHECKS[key](value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {key}: {exc}") from None
    return BaseSettings(**values)


def _legacy(out_dir: Path) -> BaseSettings | None:
    """A base generated before it recorded its settings: its shard count, read from its CronJob."""
    base = out_dir / KUBE_DIR
    if not is_generated(base / "kustomization.yaml"):
        return None
    try:
        cron = read_yaml(base / "cronjob.yaml")
        shards = cron["spec"]["jobTemplate"]["spec"]["completions"]
        return BaseSettings(shards=_int(shards, 1, MAX_SHARDS))
    except (ConfigError, KeyError, TypeError, ValueError):
        return BaseSettings()  # unreadable: the defaults, and --check shows what they change


def recorded(out_dir: Path) -> BaseSettings | None:
    """The settings of the base in OUT/kubernetes/, or None when there is no base."""
    path = settings_path(out_dir)
    if not path.exists() and not path.is_symlink():
        return _legacy(out_dir)
    return parse(read_text(path, max_bytes=MAX_FILE_BYTES), path.as_posix())


def settings_for(out_dir: Path, *, requested: bool, changes: dict[str, object]) -> BaseSettings | None:
    """The base's settings for this run: the recorded ones with the flags given (`changes`, by field)
    applied; None when there is no base and `--kubernetes` was not asked for (a flag then is exit 2)."""
    given = {k: v for k, v in changes.items() if v is not None}
    checked: dict[str, Any] = {}
    for key, value in given.items():
        try:
            checked[key] = CHECKS[key](value)
        except ValueError as exc:
            raise UsageError(f"{FLAGS[key]}: {exc}") from None
    found = recorded(out_dir)
    if found is None and not requested:
        if given:
            raise UsageError(f"{', '.join(FLAGS[k] for k in given)} needs --kubernetes "
                             f"(no base in {(out_dir / KUBE_DIR).as_posix()} yet)")
        return None
    return replace(found or BaseSettings(), **checked)


def render(settings: BaseSettings, header: str, version: str) -> str:
    """The settings file, deterministic (same settings and version: same bytes)."""
    import json

    lines = [f"# {header}",
             "# The settings of this base: `cgpreset generate` (and --check, --diff) rebuilds the base from",
             "# them and the configs, with no flag. Change one with its flag (`generate --out DIR --shards 8`):",
             "# " + ", ".join(FLAGS.values()) + ".",
             f"schema: {SCHEMA}", f"written_by: cgpreset {version}"]
    notes = {"schedule": "auto: a few minutes after each bar of the finest interval closes (UTC)",
             "image": "auto: cgpreset:<written_by's version>; an overlay sets the registry"}
    for f in fields(BaseSettings):
        value = getattr(settings, f.name)
        note = f"  # {notes[f.name]}" if f.name in notes else ""
        lines.append(f"{f.name}: {json.dumps(value)}{note}")
    return "\n".join(lines) + "\n"
