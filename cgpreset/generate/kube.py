"""`generate --kubernetes`: a kustomize base beside the configs (pure: no I/O but reading templates).

DIR/kubernetes/ holds kustomization.yaml (a configMapGenerator over copies of the configs, kept
under the base because kustomize loads no file outside it; the image as a kustomize image; the
namespace), a CronJob running `run-preset` as an Indexed Job of N shards a few minutes after each
bar closes, and a Deployment running `stream --store` with a liveness probe on the stream's
liveness row. Deterministic: the same configs give the same bytes (no versions, no times).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from cgpreset._yaml import safe_load
from cgpreset.errors import ExitCode
from cgpreset.generate.render import RenderedFile
from cgpreset.generate.writer import GENERATED_MARK, OutputFile
from cgpreset.models.config import CoinConfig
from cgpreset.plans import DAY_MS, Plan, interval_ms

KUBE_DIR = "kubernetes"
NAMESPACE = "cgpreset"
SECRET = "cgpreset"  # keys: api-key, store-dsn (created by the operator, never generated)
CONFIG_MOUNT = "/etc/cgpreset/configs"
TEMPLATES = Path(__file__).parent / "kubernetes"
#: Seconds a stream's liveness row may age before the pod counts as dead (it is written every 10 s).
ALIVE_MAX_AGE = 120
#: Seconds between the Job's deadline and run-preset's own --deadline: time to close the run row.
STOP_MARGIN = 60

#: The requests of a first (backfill) run of these configs at this plan (the --dry-run estimate).
Estimate = Callable[[Sequence[CoinConfig], Plan], int]


@dataclass(frozen=True)
class KubeOptions:
    """What the base needs beyond the configs."""

    estimate: Estimate
    shards: int = 1


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


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False, trim_blocks=True, lstrip_blocks=True)


def kube_files(rendered: Sequence[RenderedFile], plan: Plan, *, source: str, out: str,
               options: KubeOptions) -> list[OutputFile]:
    """Every file of DIR/kubernetes/, rendered and parsed back (a template bug fails here, not in the cluster)."""
    configs = [r.config for r in rendered]
    interval = finest_interval(configs)
    requests = options.estimate(configs, plan) + options.shards  # + each shard's plan lookup
    starting, active, run_deadline = deadlines(requests, plan, interval)
    context = {
        "header": f"{GENERATED_MARK}{source} (cgpreset generate --kubernetes). Do not edit.",
        "out": out, "namespace": NAMESPACE, "secret": SECRET, "config_mount": CONFIG_MOUNT,
        "configs": sorted(r.filename for r in rendered), "shards": options.shards, "interval": interval,
        "schedule": schedule(interval), "minutes_after": minutes_after(interval), "requests": requests,
        "plan": plan.value, "rate": plan.rate_per_minute, "starting_deadline": starting,
        "active_deadline": active, "run_deadline": run_deadline, "alive_max_age": ALIVE_MAX_AGE,
        "exit": {"findings": int(ExitCode.FINDINGS), "usage": int(ExitCode.USAGE), "api": int(ExitCode.API),
                 "tempfail": int(ExitCode.TEMPFAIL)},
    }
    env = _env()
    files = [OutputFile(f"{KUBE_DIR}/configs/{r.filename}", r.text.encode("utf-8"))
             for r in sorted(rendered, key=lambda r: r.filename)]
    for name in ("kustomization", "namespace", "cronjob", "deployment"):
        text = env.get_template(f"{name}.yaml.j2").render(context)
        safe_load(text)  # valid YAML, or a TemplateError-like failure now
        files.append(OutputFile(f"{KUBE_DIR}/{name}.yaml", text.encode("utf-8")))
    return files
