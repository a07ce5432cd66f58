"""`demo`: the README's main job end to end against the embedded emulator, in a few seconds.

resolve the top-10 → generate one config per coin → health sign-off → run-preset into a store →
the HTML report of what was stored, then print the commands that repeat each step by hand.
Always the emulator, even with a key set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cgpreset.analyst.report import ReportResult, write_report
from cgpreset.clock import wall_ms
from cgpreset.generate.pipeline import GenerateResult, load_inputs, open_templates, run_generate
from cgpreset.models.config import load_configs
from cgpreset.models.preset import DEFAULT_PRESET, DEFAULT_TEMPLATES, DEFAULT_WATCHLIST, locate
from cgpreset.run.engine import run_preset
from cgpreset.run.health import HealthReport, run_health
from cgpreset.run.outcome import RunResult
from cgpreset.run.source import EMULATOR
from cgpreset.store import open_store

#: The demo's first run backfills two weeks (not the preset's 90 days) so that it takes seconds.
DEMO_BACKFILL_DAYS = 14


@dataclass
class DemoResult:
    """What the demo did, step by step."""

    configs_dir: Path
    store_path: Path
    generated: GenerateResult
    health: HealthReport
    run: RunResult
    report: ReportResult | None = None

    @property
    def exit_code(self) -> int:
        return max(int(self.health.exit_code), int(self.run.exit_code))


def run_demo(client: Any, *, configs_dir: Path, store_path: Path, concurrency: int = 8,
             plan: str = "auto", report_path: Path | None = None) -> DemoResult:
    """Generate, sign off and run the watchlist, then write the report (if `report_path`);
    `client` talks to the embedded emulator, and the report says so."""
    inputs = load_inputs(locate(None, DEFAULT_PRESET), locate(None, DEFAULT_WATCHLIST))
    templates = open_templates(locate(None, DEFAULT_TEMPLATES))
    with open_store(store_path) as store:  # opened first: a bad store fails before any file is written
        generated = run_generate(inputs, templates, out_dir=configs_dir, client=lambda: client, plan=plan,
                                 source=EMULATOR)  # the snapshot and the configs say whose venues these are
        configs = load_configs([configs_dir])
        health = run_health(configs, client, store_path=store_path, concurrency=concurrency, source=EMULATOR)
        run = run_preset(configs, client, store, concurrency=concurrency, backfill_days=DEMO_BACKFILL_DAYS,
                         source=EMULATOR)
    report = None
    if report_path is not None:
        report = write_report(configs, store_path, report_path, source=EMULATOR, now_ms=wall_ms())
    return DemoResult(configs_dir, store_path, generated, health, run, report)


def repeat_commands(configs_dir: Path, store_path: Path, report_path: Path | None = None) -> list[str]:
    """The same steps by hand, one shell line each, on the embedded emulator (`--emulator`): they
    work as printed whatever key or `cgpreset emulator` the shell has exported, and their source is
    the one the demo's store holds (a store never mixes sources). The key is never printed."""
    configs, store = configs_dir.as_posix(), store_path.as_posix()
    return [
        "cgpreset --emulator resolve",
        f"cgpreset --emulator generate --out {configs}",
        f"cgpreset --emulator health {configs} --store {store}",
        f"cgpreset --emulator run-preset {configs} --store {store} --backfill-days {DEMO_BACKFILL_DAYS}",
        f"cgpreset --emulator stream --config {configs} --max-events 20 --duration 10 --store {store}",
    ] + ([f"cgpreset report {configs} --store {store} --source emulator --html {report_path.as_posix()}"]
         if report_path is not None else [])
