"""`--metrics FILE`: Prometheus text format for node_exporter's textfile collector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.test_run_e2e import invoke, write_configs

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str, *, kind: str = "gauge") -> Samples:
    """The samples of a text exposition, read with prometheus_client's own parser: each family
    appears once, every sample is unique, and every family is of `kind`."""
    samples: Samples = {}
    families: list[str] = []
    assert text.endswith("\n")
    for family in text_string_to_metric_families(text):
        assert family.name not in families, f"family {family.name} appears twice"
        assert family.type == kind, f"{family.name} is a {family.type}"
        families.append(family.name)
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate sample {sample}"
            samples[key] = sample.value
    return samples


def values(samples: dict[Any, float], name: str, **labels: str) -> list[float]:
    want = set(labels.items())
    return [v for (n, ls), v in samples.items() if n == name and want <= set(ls)]


def test_run_metrics_are_written_even_when_a_layer_fails(tmp_path: Path, emulator: Any,
                                                          emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL", "BTC"))
    prom = tmp_path / "textfile" / "cgpreset.prom"
    prom.parent.mkdir()
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
    ages = values(first, "cgpreset_series_last_bar_age_seconds", layer="funding")
    assert len(ages) == 2 and all(0 <= v < 3 * 3600 for v in ages)

    emulator.set_faults([{"path": "/api/futures/funding-rate/history", "kind": "code_500"}])
    bad = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "m.db"), "--metrics", str(prom)],
                 {**emu_env, "CGPRESET_MAX_ATTEMPTS": "1"})
    assert bad.exit_code == 1
    second = parse(prom.read_text(encoding="utf-8"))
    assert values(second, "cgpreset_run_exit_code") == [1]
    assert values(second, "cgpreset_series_outcome", layer="funding", outcome="failed") == [1.0, 1.0]
    assert values(second, "cgpreset_series_outcome", layer="open_interest", outcome="ok") == [1.0, 1.0]
    assert sorted(p.name for p in prom.parent.iterdir()) == ["cgpreset.prom"]  # no temp file left


def test_two_configs_of_one_coin_give_distinct_shot_series(tmp_path: Path, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("BTC",))
    text = (cfgs / "btc.yaml").read_text(encoding="utf-8")
    assert "exchange: Binance" in text and "symbol: BTCUSDT" in text
    (cfgs / "btc-okx.yaml").write_text(text.replace("exchange: Binance", "exchange: OKX").replace(
        "symbol: BTCUSDT", "symbol: BTC-USDT-SWAP"), encoding="utf-8")
    prom = tmp_path / "health.prom"
    assert invoke(["health", str(cfgs), "--metrics", str(prom)], emu_env).exit_code == 0
    samples = parse(prom.read_text(encoding="utf-8"))  # asserts no duplicate series
    targets = sorted(dict(ls)["target"] for (n, ls) in samples if n == "cgpreset_health_shot_ok"
                     and dict(ls)["layer"] == "funding")
    assert targets == ["exchange=Binance,interval=1h,symbol=BTCUSDT", "exchange=OKX,interval=1h,symbol=BTC-USDT-SWAP"]


def test_a_metrics_path_under_a_file_fails_before_any_request(tmp_path: Path, emulator: Any,
                                                              emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    emulator.reset_records()
    result = invoke(["run-preset", str(cfgs), "--metrics", str(tmp_path / "afile" / "m.prom")], emu_env)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"Error: {tmp_path}/afile/m.prom: {tmp_path}/afile is not a directory"]
    assert emulator.recorded() == []


def test_a_metrics_file_that_cannot_be_written_after_the_run_keeps_the_report(
        tmp_path: Path, emu_env: dict[str, str], monkeypatch: Any) -> None:
    from cgpreset.cli import run as run_cmd
    from cgpreset.errors import OutputError

    def full(path: Path, data: bytes) -> None:
        raise OutputError(f"{path}: cannot write: No space left on device")

    monkeypatch.setattr(run_cmd, "write_atomic", full)
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    result = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), "--json",
                     "--metrics", str(tmp_path / "m.prom")], emu_env)
    assert result.exit_code == 2
    assert '"exit_code": 0' in result.stdout  # the report is out, whole
    assert result.stderr.splitlines() == [
        f"note: {tmp_path}/s.db does not exist: creating a new store (3 days of history to backfill)",
        f"Error: metrics not written: {tmp_path}/m.prom: cannot write: No space left on device"]


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


def test_a_metrics_path_that_is_a_directory_is_a_usage_error(tmp_path: Path, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    (tmp_path / "prom").mkdir()
    result = invoke(["health", str(cfgs), "--metrics", str(tmp_path / "prom")], emu_env)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("Error: Invalid value for '--metrics'")


def test_the_textfile_passes_promtool_and_carries_no_secret(tmp_path: Path, emulator: Any,
                                                            emu_env: dict[str, str]) -> None:
    """Prometheus' own linter reads both files as Prometheus would; the API key is in neither."""
    from tests.prom_tools import check_metrics

    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    run, health = tmp_path / "run.prom", tmp_path / "health.prom"
    assert invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), "--metrics", str(run)],
                  emu_env).exit_code == 0
    assert invoke(["health", str(cfgs), "--metrics", str(health)], emu_env).exit_code == 0
    for path in (run, health):
        text = path.read_text(encoding="utf-8")
        assert check_metrics(text) == "", path.name
        assert emulator.api_key not in text
