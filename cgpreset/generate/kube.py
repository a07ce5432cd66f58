"""`generate --kubernetes`: a kustomize base beside the configs (pure: no I/O but reading templates).

DIR/kubernetes/ holds kustomization.yaml (a configMapGenerator over copies of the configs, kept
under the base because kustomize loads no file outside it; the image as a kustomize image tagged
with cgpreset's version; the namespace), a CronJob running `run-preset` as an Indexed Job of N
shards a few minutes after each bar closes, a Deployment running `stream --store` with a liveness
probe on the stream's liveness row, a NetworkPolicy, and the monitoring: a PrometheusRule, a
PodMonitor for the stream and a Grafana dashboard (dashboard.py). cgpreset-base.yaml records the
settings it was made with (kube_settings.py). Deterministic: the same configs, settings and
cgpreset version give the same bytes (no times).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from cgpreset._yaml import safe_load
from cgpreset.errors import ExitCode
from cgpreset.generate.cron import period_seconds
from cgpreset.generate.dashboard import dashboard_json
from cgpreset.generate.kube_settings import (
    AUTO,
    KUBE_DIR,
    OFF,
    SETTINGS_FILE,
    BaseSettings,
    image_parts,
    pushgateway_port,
)
from cgpreset.generate.kube_settings import render as render_settings
from cgpreset.generate.render import RenderedFile
from cgpreset.generate.writer import GENERATED_MARK, OutputFile
from cgpreset.models.config import CoinConfig
from cgpreset.plans import DAY_MS, Plan, interval_ms

NAMESPACE = "cgpreset"
SECRET = "cgpreset"  # keys: api-key, store-dsn (created by the operator, never generated)
CONFIG_MOUNT = "/etc/cgpreset/configs"
TEMPLATES = Path(__file__).parent / "kubernetes"
#: Seconds a stream's liveness row may age before the pod counts as dead (it is written every 10 s).
ALIVE_MAX_AGE = 120
#: Seconds between the Job's deadline and run-preset's own --deadline: time to close the run row.
STOP_MARGIN = 60
#: The port `stream --metrics-port` serves /metrics on (the container port named `metrics`).
METRICS_PORT = 9108
#: Seconds without an accepted event before the stream counts as silent (liquidations of the top coins
#: arrive every few seconds; a quiet hour of a small coin's trades is not an outage).
STREAM_SILENT = 1800
#: Where kustomize finds the dashboard (the file the Grafana sidecar loads, from the ConfigMap).
DASHBOARD = "dashboards/cgpreset.json"
#: The oldest Kubernetes the base runs on: Indexed Jobs with backoffLimitPerIndex and the FailIndex
#: action of podFailurePolicy are on by default from 1.29 (the tests validate the 1.29 and 1.31 schemas).
MIN_KUBERNETES = "1.29"
TEMPLATES_RENDERED = ("kustomization", "namespace", "cronjob", "deployment", "networkpolicy", "prometheusrule",
                      "podmonitor")

#: The requests of a first (backfill) run of these configs at this plan (the --dry-run estimate).
Estimate = Callable[[Sequence[CoinConfig], Plan], int]


@dataclass(frozen=True)
class KubeOptions:
    """What the base needs beyond the configs: the estimate, its settings, and the writer's version."""

    estimate: Estimate
    version: str  # cgpreset's, the image's tag unless the settings name another image
    settings: BaseSettings = BaseSettings()


def finest_interval(configs: Sequence[CoinConfig]) -> str:
    """The configs' finest bar interval: the schedule follows the bars that close most often."""
    return min((cfg.interval for cfg in configs), key=interval_ms)


def minutes_after(interval: str) -> int:
    """How long after a bar closes the run starts: a few minutes, less for short bars."""
    minutes = interval_ms(interval) // 60_000
    return 0 if minutes < 3 else min(5, minutes // 3)


def schedule(interval: str) -> str:
    """A cron line (UTC) firing `minutes_after` each bar of `interval` closes."""
    minutes = interval_ms(interval) // 60_000
    off = minutes_after(interval)
    if minutes == 1:
        return "* * * * *"
    if minutes < 60:
        return ",".join(str(m + off) for m in range(0, 60, minutes)) + " * * * *"
    if interval_ms(interval) < DAY_MS:
        hours = minutes // 60
        return f"{off} * * * *" if hours == 1 else f"{off} */{hours} * * *"
    if interval == "1w":
        return f"{off} 0 * * 1"  # weekly bars open on Monday (plans.bar_open)
    return f"{off} 0 * * *"


def deadlines(requests: int, plan: Plan, interval: str) -> tuple[int, int, int]:
    """(startingDeadlineSeconds, activeDeadlineSeconds, run-preset --deadline) for `requests`.

    The run needs ceil(requests / rate) budget windows of 61 s; the Job gets 1.5 times that plus
    two minutes, and run-preset stops a minute earlier so it closes its run row itself.
    """
    windows = max(1, math.ceil(requests / plan.rate_per_minute))
    active = int(windows * 61 * 1.5) + 120
    starting = max(60, min(1800, interval_ms(interval) // 2000))
    return starting, active, active - STOP_MARGIN


def duration(seconds: int) -> str:
    """Seconds as a Prometheus duration, in the largest whole unit (7200 -> 2h)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False, trim_blocks=True, lstrip_blocks=True)


def kube_files(rendered: Sequence[RenderedFile], plan: Plan, *, source: str, out: str,
               options: KubeOptions, definitions: Sequence[OutputFile] = ()) -> list[OutputFile]:
    """Every file of DIR/kubernetes/, rendered and parsed back (a template bug fails here, not in the cluster).

    `definitions`: the `<name>.layer.yaml` files beside the configs (a repo's own layers), copied into
    the ConfigMap with the configs, so a pod's `run-preset` needs nothing else."""
    configs = [r.config for r in rendered]
    interval = finest_interval(configs)
    cfg = options.settings
    requests = options.estimate(configs, plan) + cfg.shards  # + each shard's plan lookup
    starting, active, run_deadline = deadlines(requests, plan, interval)
    cron = schedule(interval) if cfg.schedule == AUTO else cfg.schedule
    name, tag, digest = image_parts(cfg, options.version)
    gateway = None if cfg.pushgateway == OFF else cfg.pushgateway
    header = f"{GENERATED_MARK}{source} (cgpreset generate --kubernetes). Do not edit."
    context = {
        "header": header, "out": out, "namespace": NAMESPACE, "secret": SECRET, "config_mount": CONFIG_MOUNT,
        "configs": sorted([*(r.filename for r in rendered), *(d.path for d in definitions)]),
        "shards": cfg.shards, "interval": interval,
        "schedule": cron, "custom_schedule": cfg.schedule != AUTO, "minutes_after": minutes_after(interval),
        "requests": requests, "plan": plan.value, "rate": plan.rate_per_minute, "starting_deadline": starting,
        "active_deadline": active, "run_deadline": run_deadline, "alive_max_age": ALIVE_MAX_AGE,
        "exit": {"findings": int(ExitCode.FINDINGS), "usage": int(ExitCode.USAGE), "api": int(ExitCode.API),
                 "tempfail": int(ExitCode.TEMPFAIL)},
        "image": {"name": name, "tag": tag, "digest": digest}, "pushgateway": gateway, "store_port": cfg.store_port,
        "pushgateway_port": gateway and pushgateway_port(gateway),
        "egress_ports": sorted({443, cfg.store_port, *([pushgateway_port(gateway)] if gateway else [])}),
        "monitoring_namespace": cfg.monitoring_namespace, "metrics_port": METRICS_PORT,
        "period": period_seconds(cron), "stream_silent": STREAM_SILENT, "duration": duration,
        "dashboard": DASHBOARD, "min_kubernetes": MIN_KUBERNETES,
    }
    env = _env()
    files = [OutputFile(f"{KUBE_DIR}/configs/{r.filename}", r.text.encode("utf-8"))
             for r in sorted(rendered, key=lambda r: r.filename)]
    files += [OutputFile(f"{KUBE_DIR}/configs/{d.path}", d.content) for d in sorted(definitions, key=lambda d: d.path)]
    for template in TEMPLATES_RENDERED:
        text = env.get_template(f"{template}.yaml.j2").render(context)
        safe_load(text)  # valid YAML, or a TemplateError-like failure now
        files.append(OutputFile(f"{KUBE_DIR}/{template}.yaml", text.encode("utf-8")))
    layers = {layer for c in configs for layer in c.layers.enabled()}
    files.append(OutputFile(f"{KUBE_DIR}/{DASHBOARD}", dashboard_json(sorted(layers)).encode("utf-8")))
    files.append(OutputFile(f"{KUBE_DIR}/{SETTINGS_FILE}", render_settings(cfg, header, options.version).encode()))
    return files
