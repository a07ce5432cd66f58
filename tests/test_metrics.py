"""`--metrics FILE`: Prometheus text format for node_exporter's textfile collector."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cgpreset.metrics import _escape, _number
from tests.test_run_e2e import invoke, write_configs

_SAMPLE = re.compile(r'^([a-z_]+)(?:\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\})? (\S+)$')
_LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """A strict reader of the text format: HELP and TYPE before each family, unique samples."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    typed: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:]
            assert kind == "gauge" and name not in typed
            typed.add(name)
            continue
        m = _SAMPLE.match(line)
        assert m, line
        name, labels, value = m.groups()
        assert name in typed, f"{name} has no TYPE line before it"
        key = (name, frozenset(_LABEL.findall(labels or "")))
        assert key not in samples, f"duplicate sample {line}"
        samples[key] = float(value)
    return samples


def values(samples: dict[Any, float], name: str, **labels: str) -> list[float]:
    want = set(labels.items())
    return [v for (n, ls), v in samples.items() if n == name and want <= set(ls)]


def test_run_metrics_are_written_even_when_a_layer_fails(tmp_path: Path, emulator: Any,
                                                          emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL", "BTC"))
    prom = tmp_path / "textfile" / "cgpreset.prom"
    ok = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "m.db"), "--metrics", str(prom)], emu_env)
    assert ok.exit_code == 0, ok.output
    first = parse(prom.read_text(encoding="utf-8"))
    series = {dict(ls)["series"] for (n, ls) in first if n == "cgpreset_series_rows"}
    assert len(series) == 11  # 5 per coin + the shared ETF series
    assert values(first, "cgpreset_run_exit_code") == [0]
    assert values(first, "cgpreset_run_series", outcome="ok") == [11]
    assert sorted(values(first, "cgpreset_series_outcome", outcome="ok")) == [1.0] * 11
    assert sum(values(first, "cgpreset_series_outcome", outcome="failed")) == 0
    assert values(first, "cgpreset_run_rate_limited") == [0]
    assert all(v < 3 * 3600 for v in values(first, "cgpreset_series_last_bar_age_seconds", layer="funding"))

    emulator.set_faults([{"path": "/api/futures/funding-rate/history", "kind": "code_500"}])
    bad = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "m.db"), "--metrics", str(prom)],
                 {**emu_env, "CGPRESET_MAX_ATTEMPTS": "1"})
    assert bad.exit_code == 1
    second = parse(prom.read_text(encoding="utf-8"))
    assert values(second, "cgpreset_run_exit_code") == [1]
    assert values(second, "cgpreset_series_outcome", layer="funding", outcome="failed") == [1.0, 1.0]
    assert values(second, "cgpreset_series_outcome", layer="open_interest", outcome="ok") == [1.0, 1.0]
    assert sorted(p.name for p in prom.parent.iterdir()) == ["cgpreset.prom"]  # no temp file left


def test_health_metrics(tmp_path: Path, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    prom = tmp_path / "health.prom"
    result = invoke(["health", str(cfgs), "--metrics", str(prom)], emu_env)
    assert result.exit_code == 0, result.output
    samples = parse(prom.read_text(encoding="utf-8"))
    assert values(samples, "cgpreset_health_signed_off") == [1]
    assert values(samples, "cgpreset_health_rate_limit_per_minute") == [300]
    assert sorted(dict(ls)["layer"] for (n, ls) in samples if n == "cgpreset_health_shot_ok") == [
        "etf_flows", "funding", "liquidation", "open_interest", "taker_volume"]
    assert set(values(samples, "cgpreset_health_shot_ok")) == {1.0}
    assert values(samples, "cgpreset_stream_events") == []  # no stream has run on this store


def test_a_metrics_path_that_is_a_directory_is_one_line_exit_2(tmp_path: Path, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    (tmp_path / "prom").mkdir()
    result = invoke(["health", str(cfgs), "--metrics", str(tmp_path / "prom")], emu_env)
    assert result.exit_code == 2
    assert "Invalid value for '--metrics'" in result.stderr


def test_label_values_and_numbers_are_escaped() -> None:
    assert _escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert [_number(v) for v in (3.0, 0.25, float("inf"), float("nan"))] == ["3", "0.25", "+Inf", "NaN"]
