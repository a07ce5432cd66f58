"""The base's monitoring: each alert fires and stays quiet as `promtool test rules` shows, the PodMonitor
scrapes the stream, the NetworkPolicy lets through what the pods need, and every query of the Grafana
dashboard returns rows on a real PostgreSQL store filled by a real run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from cgpreset.generate.dashboard import dashboard, layer_panels, panel_sql, queries
from cgpreset.layers import FieldSpec, spec
from cgpreset.models.config import load_configs
from tests.conftest import REPO
from tests.test_generate import gen, ws  # noqa: F401 - the workspace fixture
from tests.test_kube import base, containers, needs_kubectl, pod_spec, render  # noqa: F401 - the base fixture
from tests.test_run_e2e import invoke, write_configs

#: The metric names cgpreset exports: run-preset's and health's pushes, the stream's /metrics.
EXPORTED = {name for module in ("run/metrics.py", "stream/metrics.py")
            for name in re.findall(r"\bcgpreset_\w+", (REPO / "cgpreset" / module).read_text(encoding="utf-8"))}
ALERTS = {"CgpresetRunFailed", "CgpresetRunFindings", "CgpresetRunNotPushed", "CgpresetRunAbsent",
          "CgpresetRunRateLimited", "CgpresetSeriesStale", "CgpresetSeriesMissingBars", "CgpresetStreamDown",
          "CgpresetStreamDisconnected", "CgpresetStreamSilent"}


@pytest.fixture
def promtool() -> str:
    """promtool (Debian's `prometheus` package): skipped without it on a developer's machine, failed in CI."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("promtool is not installed (apt-get install prometheus)", pytrace=False)
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def rule_groups(base: Path) -> list[dict[str, Any]]:  # noqa: F811
    doc = yaml.safe_load((base / "prometheusrule.yaml").read_text(encoding="utf-8"))
    return list(doc["spec"]["groups"])


def rules(base: Path) -> dict[str, dict[str, Any]]:  # noqa: F811
    return {r["alert"]: r for g in rule_groups(base) for r in g["rules"]}


def test_the_rule_is_a_prometheus_operator_object_on_the_contracts_names(base: Path) -> None:  # noqa: F811
    doc = yaml.safe_load((base / "prometheusrule.yaml").read_text(encoding="utf-8"))
    assert (doc["apiVersion"], doc["kind"], doc["metadata"]["name"]) == ("monitoring.coreos.com/v1",
                                                                         "PrometheusRule", "cgpreset")
    found = rules(base)
    assert set(found) == ALERTS
    for name, rule in found.items():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        used = set(re.findall(r"\bcgpreset_\w+", rule["expr"]))
        assert used <= EXPORTED, f"{name}: {used - EXPORTED} is not a metric cgpreset exports"
        assert 'job="cgpreset-run"' in rule["expr"] or 'job="cgpreset-stream"' in rule["expr"]


def test_promtool_checks_the_rules(base: Path, promtool: str, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups(base)}), encoding="utf-8")
    checked = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yaml")], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0 and f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout, checked.stderr
    broken = rule_groups(base)
    broken[0]["rules"][0]["expr"] = "cgpreset_run_exit_code{job=}"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump({"groups": broken}), encoding="utf-8")
    assert subprocess.run([promtool, "check", "rules", str(tmp_path / "broken.yaml")], capture_output=True,
                          timeout=60).returncode != 0


RUN = {"job": "cgpreset-run", "shard": "0"}
SERIES = {**RUN, "coin": "SOL", "layer": "open_interest", "series": "open_interest/SOL/all", "interval": "1h"}
STREAM = {"job": "cgpreset-stream", "instance": "10.0.0.7:9108"}


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _m(minutes: int) -> str:
    return f"{minutes}m"


def alert_cases(period: int, freshness_bars: int) -> list[tuple[str, list[dict[str, str]], int, dict[str, str] | None]]:
    """(alert, input series, minute of the check, labels it fires with or None when it must stay quiet).

    Written from what each alert means, in units of the schedule's period (seconds): a check at
    `2 * period + 1 min` without a push fires, one with pushes every minute does not."""
    p = period // 60
    n = 2 * p + 60  # samples: one a minute, past every check below
    stale_at = freshness_bars * 60 + 2 * p + 10  # later than the allowance (bars + one schedule + the deadline)
    bars = (("cgpreset_series_freshness_limit_bars", f"{freshness_bars}x{n + stale_at}"),
            ("cgpreset_series_interval_seconds", f"3600x{n + stale_at}"))
    limits = [_series(name, SERIES, v) for name, v in bars]
    quiet = [_series("up", {"job": "other"}, f"1x{n}")]
    return [
        ("CgpresetRunFailed", [_series("cgpreset_run_exit_code", RUN, "3x30")], 5, {**RUN, "severity": "critical"}),
        ("CgpresetRunFailed", [_series("cgpreset_run_exit_code", RUN, "1x30")], 5, None),
        ("CgpresetRunFindings", [_series("cgpreset_run_exit_code", RUN, "1x30")], 5, {**RUN, "severity": "warning"}),
        ("CgpresetRunFindings", [_series("cgpreset_run_exit_code", RUN, "0x30")], 5, None),
        ("CgpresetRunNotPushed", [_series("push_time_seconds", RUN, f"0x{n}")], 2 * p + 1,
         {**RUN, "severity": "critical"}),
        ("CgpresetRunNotPushed", [_series("push_time_seconds", RUN, f"0x{n}")], 2 * p - 1, None),
        ("CgpresetRunNotPushed", [_series("push_time_seconds", RUN, f"0+60x{n}")], 2 * p + 1, None),
        ("CgpresetRunAbsent", quiet, 2 * p + 1, {"job": "cgpreset-run", "severity": "critical"}),
        ("CgpresetRunAbsent", quiet, 2 * p - 10, None),
        ("CgpresetRunAbsent", [_series("push_time_seconds", RUN, f"0+60x{n}")], 2 * p + 1, None),
        ("CgpresetRunRateLimited", [_series("cgpreset_run_rate_limited", RUN, "2x30")], 5,
         {**RUN, "severity": "warning"}),
        ("CgpresetRunRateLimited", [_series("cgpreset_run_rate_limited", RUN, "0x30")], 5, None),
        ("CgpresetSeriesStale", [*limits, _series("cgpreset_series_age_bars", SERIES, f"{freshness_bars + 1}x30")],
         10, {**SERIES, "severity": "warning"}),
        ("CgpresetSeriesStale", [*limits, _series("cgpreset_series_last_closed_bar_timestamp_seconds", SERIES,
                                                  f"0x{n + stale_at}")], stale_at, {**SERIES, "severity": "warning"}),
        ("CgpresetSeriesStale", [*limits, _series("cgpreset_series_last_closed_bar_timestamp_seconds", SERIES,
                                                  f"0x{n + stale_at}")], freshness_bars * 60 + p, None),
        ("CgpresetSeriesStale", [*limits, _series("cgpreset_series_age_bars", SERIES, f"1.5x{n + stale_at}"),
                                 _series("cgpreset_series_last_closed_bar_timestamp_seconds", SERIES,
                                         f"-3600+60x{n + stale_at}")], stale_at, None),
        ("CgpresetSeriesMissingBars", [_series("cgpreset_series_missing_bars", SERIES, f"3x{n}")], 2 * p + 5,
         {**SERIES, "severity": "warning"}),
        ("CgpresetSeriesMissingBars", [_series("cgpreset_series_missing_bars", SERIES, f"3x{n}")], p, None),
        ("CgpresetSeriesMissingBars", [_series("cgpreset_series_missing_bars", SERIES, f"0x{n}")], 2 * p + 5, None),
        ("CgpresetStreamDown", [_series("up", STREAM, "0x30")], 10, {**STREAM, "severity": "critical"}),
        ("CgpresetStreamDown", quiet, 10, {"job": "cgpreset-stream", "severity": "critical"}),
        ("CgpresetStreamDown", [_series("up", STREAM, "1x30")], 10, None),
        ("CgpresetStreamDisconnected", [_series("cgpreset_stream_connected", STREAM, "0x30")], 10,
         {**STREAM, "severity": "warning"}),
        ("CgpresetStreamDisconnected", [_series("cgpreset_stream_connected", STREAM, "1x30")], 10, None),
        ("CgpresetStreamSilent", [_series("cgpreset_stream_last_event_timestamp_seconds", STREAM, "0x60")], 45,
         {**STREAM, "severity": "warning"}),
        ("CgpresetStreamSilent", [_series("cgpreset_stream_last_event_timestamp_seconds", STREAM, "0+60x60")], 45,
         None),
    ]


def promtool_tests(cases: list[tuple[str, list[dict[str, str]], int, dict[str, str] | None]]) -> dict[str, Any]:
    return {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [
        {"name": f"{alert} {'fires' if labels else 'stays quiet'} ({i})", "interval": "1m", "input_series": series,
         "alert_rule_test": [{"alertname": alert, "eval_time": _m(at),
                              "exp_alerts": [{"exp_labels": labels}] if labels else []}]}
        for i, (alert, series, at, labels) in enumerate(cases)]}


@pytest.mark.parametrize("flags", [(), ("--schedule", "5 */4 * * *")], ids=["hourly", "every-4h"])
def test_each_alert_fires_and_stays_quiet_as_promtool_shows(ws: Path, promtool: str, flags: tuple[str, ...]) -> None:  # noqa: F811
    assert gen("--kubernetes", *flags).exit_code == 0
    base_dir = ws / "deploy" / "kubernetes"
    period = 4 * 3600 if flags else 3600
    assert rules(base_dir)["CgpresetRunNotPushed"]["expr"].endswith(f"> {2 * period}")  # two schedules
    groups = rule_groups(base_dir)
    for group in groups:  # promtool compares annotations too: the check above covers them, the logic is tested here
        for rule in group["rules"]:
            rule.pop("annotations")
    (ws / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    cases = alert_cases(period, freshness_bars=2)
    assert {c[0] for c in cases if c[3]} == {c[0] for c in cases if not c[3]} == ALERTS
    (ws / "tests.yaml").write_text(yaml.safe_dump(promtool_tests(cases)), encoding="utf-8")
    result = subprocess.run([promtool, "test", "rules", "tests.yaml"], cwd=ws, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "SUCCESS" in result.stdout


@needs_kubectl
def test_the_pod_monitor_scrapes_the_streams_metrics_port(base: Path) -> None:  # noqa: F811
    docs = {d["kind"]: d for d in render(base)}
    monitor, dep = docs["PodMonitor"], docs["Deployment"]
    assert (monitor["apiVersion"], monitor["metadata"]["namespace"]) == ("monitoring.coreos.com/v1", "cgpreset")
    spec_ = monitor["spec"]
    assert set(spec_) == {"jobLabel", "selector", "podMetricsEndpoints"}
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert spec_["selector"]["matchLabels"].items() <= labels.items()
    assert labels[spec_["jobLabel"]] == "cgpreset-stream"  # the job label the rules match
    stream = containers(dep)[0]
    port = {p["name"]: p["containerPort"] for p in stream["ports"]}
    endpoint = spec_["podMetricsEndpoints"][0]
    assert endpoint["path"] == "/metrics" and endpoint["port"] in port
    args = stream["args"]
    assert args[args.index("--metrics-port") + 1] == str(port[endpoint["port"]])
    run = containers(docs["CronJob"])[0]
    env = {e["name"]: e.get("value") for e in run["env"]}
    assert env["CGPRESET_PUSHGATEWAY"] == "http://prometheus-pushgateway.monitoring:9091"


def test_what_the_base_runs_exists_in_this_cgpreset() -> None:
    """The stream's --metrics-port and the runs' CGPRESET_PUSHGATEWAY, which the base passes."""
    from cgpreset.cli import cli
    from cgpreset.settings import known_variables

    assert "--metrics-port" in {o for p in cli.commands["stream"].params for o in getattr(p, "opts", ())}
    assert "CGPRESET_PUSHGATEWAY" in known_variables()


def test_without_a_pushgateway_only_the_stream_is_watched(ws: Path) -> None:  # noqa: F811
    assert gen("--kubernetes", "--pushgateway", "off").exit_code == 0
    base_dir = ws / "deploy" / "kubernetes"
    assert set(rules(base_dir)) == {a for a in ALERTS if a.startswith("CgpresetStream")}
    cron = yaml.safe_load((base_dir / "cronjob.yaml").read_text(encoding="utf-8"))
    (run,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert "CGPRESET_PUSHGATEWAY" not in {e["name"] for e in run["env"]}
    policy = yaml.safe_load((base_dir / "networkpolicy.yaml").read_text(encoding="utf-8"))
    assert sorted(p["port"] for p in policy["spec"]["egress"][1]["ports"]) == [443, 5432]
    assert yaml.safe_load((base_dir / "cgpreset-base.yaml").read_text(encoding="utf-8"))["pushgateway"] == "off"


def _policy(base_dir: Path) -> dict[str, Any]:
    return next(d for d in render(base_dir) if d["kind"] == "NetworkPolicy")


@needs_kubectl
def test_the_network_policy_lets_through_dns_the_api_the_store_and_the_pushgateway(ws: Path) -> None:  # noqa: F811
    assert gen("--kubernetes").exit_code == 0
    policy = _policy(ws / "deploy" / "kubernetes")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    names = policy["podSelector"]["matchExpressions"][0]
    assert (names["key"], names["operator"], sorted(names["values"])) == (
        "app.kubernetes.io/name", "In", ["cgpreset-run", "cgpreset-stream"])
    (ingress,) = policy["ingress"]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert ingress["ports"] == [{"protocol": "TCP", "port": "metrics"}]
    dns, rest = policy["egress"]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)]
    assert "to" not in rest and sorted(p["port"] for p in rest["ports"]) == [443, 5432, 9091]
    changed = gen("--store-port", "6432", "--pushgateway", "https://pgw.example.com", "--monitoring-namespace", "obs")
    assert changed.exit_code == 0, changed.output
    policy = _policy(ws / "deploy" / "kubernetes")["spec"]
    assert policy["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "obs"
    assert sorted(p["port"] for p in policy["egress"][1]["ports"]) == [443, 6432]


@needs_kubectl
def test_the_dashboard_is_a_configmap_for_the_grafana_sidecar(base: Path) -> None:  # noqa: F811
    board = next(d for d in render(base) if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "cgpreset-dashboard")
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    doc = json.loads(board["data"]["cgpreset.json"])
    assert doc["uid"] == "cgpreset" and [v["name"] for v in doc["templating"]["list"]] == ["datasource", "coin"]
    views = {view for _, sql in queries(doc) for view in re.findall(r"\bFROM ([a-z_]+)\b(?!\()", sql)}
    # every layer of the configs (the shipped preset runs all six), the ETF tickers, the runs and streams
    assert views == {"funding", "open_interest", "liquidation", "taker_volume", "liquidation_exchanges", "etf_flows",
                     "etf_flows_by_ticker", "runs", "stream_runs"}


def test_a_new_layer_gets_its_panel_from_its_spec_alone() -> None:
    basis = replace(spec("open_interest"), id="basis", fields=(FieldSpec("basis", "number", "percent", "basis"),))
    (panel,) = layer_panels(basis)
    sql = panel_sql(panel)
    assert "FROM basis" in sql and "coin = '$coin'" in sql and "closed = 1" in sql
    assert sql.startswith('SELECT to_timestamp("time" / 1000) AS "time", basis') and panel.unit == "percent"
    bid = FieldSpec("bid", "number", "USD", "bid_usd")
    snapshot = replace(spec("liquidation_exchanges"), id="depth", fields=(bid,))
    (panel,) = layer_panels(snapshot)
    assert "concat_ws(' ', exchange) AS metric" in panel_sql(panel) and "closed" not in panel_sql(panel)


def fill(sql: str, coin: str, start: int, end: int) -> str:
    """The query as Grafana sends it: its macros and the variables substituted."""
    return sql.replace("$__unixEpochFrom()", str(start)).replace("$__unixEpochTo()", str(end)).replace("$coin", coin)


def test_every_dashboard_query_returns_rows_on_a_real_postgresql_store(
        tmp_path: Path, emulator: Any, emu_env: dict[str, str], pg_dsn: str) -> None:
    import psycopg

    cfgs = write_configs(tmp_path / "configs")
    ran = invoke(["run-preset", str(cfgs), "--store", pg_dsn], emu_env)
    assert ran.exit_code == 0, ran.output
    streamed = invoke(["stream", "--config", str(cfgs), "--max-events", "3", "--store", pg_dsn], emu_env)
    assert streamed.exit_code == 0, streamed.output
    layers = sorted({layer for _, cfg in load_configs([cfgs]) for layer in cfg.layers.enabled()})
    doc = dashboard(layers)
    now = int(time.time())
    found = {}
    with psycopg.connect(pg_dsn) as db:
        for title, sql in queries(doc):
            cur = db.execute(fill(sql, "SOL", now - 7 * 86400, now + 60))  # type: ignore[arg-type]
            found[title] = ([c.name for c in cur.description or []], cur.fetchall())
    empty = [title for title, (_, rows) in found.items() if not rows]
    assert not empty, f"no rows: {empty}"
    assert [r[0] for r in found["variable coin"][1]] == ["BTC", "SOL"]
    freshness = found["Freshness: the last closed bar of every series"]
    assert {r[0] for r in freshness[1]} == set(layers)
    ages = dict(zip(freshness[0], zip(*freshness[1], strict=True), strict=True))
    assert all(a is None or 0 <= a < 3 for a in ages["age_bars"])  # fresh: the run just stored the last bars
