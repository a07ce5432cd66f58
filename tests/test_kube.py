"""`generate --kubernetes`: a deterministic kustomize base that renders and validates against Kubernetes 1.29
and 1.31."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cgpreset import __version__
from cgpreset.errors import ExitCode
from cgpreset.generate.kube import MIN_KUBERNETES, deadlines, schedule
from cgpreset.plans import Plan
from tests.conftest import REPO
from tests.test_generate import gen, ws  # noqa: F401 - the workspace fixture

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
#: The kinds the Prometheus Operator's CRDs define: no core schema validates them.
CRD_KINDS = ("PodMonitor", "PrometheusRule")


@pytest.fixture
def base(ws: Path) -> Path:  # noqa: F811
    result = gen("--kubernetes", "--shards", "4")
    assert result.exit_code == 0, result.output
    return ws / "deploy" / "kubernetes"


def render(base: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    out = subprocess.run([KUBECTL, "kustomize", str(base)], capture_output=True, text=True, check=True, timeout=60)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if doc["kind"] == "CronJob" else spec["template"]
    return dict(template["spec"])


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod_spec(doc)["containers"])


@pytest.mark.parametrize(("interval", "line"), [
    ("1m", "* * * * *"), ("5m", "1,6,11,16,21,26,31,36,41,46,51,56 * * * *"), ("15m", "5,20,35,50 * * * *"),
    ("1h", "5 * * * *"), ("4h", "5 */4 * * *"), ("1d", "5 0 * * *"), ("1w", "5 0 * * 1")])
def test_the_run_starts_a_few_minutes_after_each_bar_closes(interval: str, line: str) -> None:
    assert schedule(interval) == line


def test_deadlines_follow_the_dry_run_estimate_at_the_plans_rate() -> None:
    assert deadlines(135, Plan.STANDARD, "1h") == (1800, 211, 151)  # one window of 300/min
    assert deadlines(1000, Plan.HOBBYIST, "4h") == (1800, 3231, 3171)  # 34 windows of 30/min: 34*61*1.5+120


def test_the_base_is_deterministic_and_checked_like_the_configs(base: Path) -> None:
    names = sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
    assert [n for n in names if "/" not in n] == [
        "cgpreset-base.yaml", "cronjob.yaml", "deployment.yaml", "kustomization.yaml", "namespace.yaml",
        "networkpolicy.yaml", "podmonitor.yaml", "prometheusrule.yaml"]
    assert "dashboards/cgpreset.json" in names
    assert len([n for n in names if n.startswith("configs/")]) == 10
    for name in names:
        if name.startswith("configs/"):  # the copies kustomize may load are the configs, byte for byte
            assert (base / name).read_bytes() == (base.parent / Path(name).name).read_bytes()
    assert gen("--kubernetes", "--shards", "4", "--check").exit_code == 0
    cron = base / "cronjob.yaml"
    cron.write_text(cron.read_text().replace("concurrencyPolicy: Forbid", "concurrencyPolicy: Allow"))
    drift = gen("--kubernetes", "--shards", "4", "--check", "--diff")
    assert drift.exit_code == ExitCode.FINDINGS
    assert "-  concurrencyPolicy: Allow" in drift.stdout and "kubernetes/cronjob.yaml (changed)" in drift.stderr
    assert gen("--kubernetes", "--shards", "2", "--check").exit_code == ExitCode.FINDINGS  # shards are in it


GOLDEN = Path(__file__).parent / "golden" / "kubernetes"
#: Read at import time: the autouse fixture clears CGPRESET_* variables before each test.
UPDATE_GOLDEN = os.environ.get("CGPRESET_UPDATE_GOLDEN") == "1"


def test_golden_base(base: Path) -> None:
    """Byte-for-byte, but for the version (the image tag, the settings' writer), shown as VERSION.
    After an intended change: CGPRESET_UPDATE_GOLDEN=1 pytest tests/test_kube.py"""
    produced = {p.relative_to(base).as_posix(): p.read_text(encoding="utf-8").replace(__version__, "VERSION")
                for p in sorted(base.rglob("*")) if p.is_file() and "configs" not in p.parts}
    if UPDATE_GOLDEN:
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for name, text in produced.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_text(text, encoding="utf-8")
    expected = {p.relative_to(GOLDEN).as_posix(): p.read_text(encoding="utf-8")
                for p in sorted(GOLDEN.rglob("*")) if p.is_file()}
    assert sorted(produced) == sorted(expected)
    for name, text in produced.items():
        assert text == expected[name], f"{name} differs from tests/golden/kubernetes (CGPRESET_UPDATE_GOLDEN=1)"


def test_shards_need_kubernetes(ws: Path) -> None:  # noqa: F811
    assert gen("--shards", "2").exit_code == ExitCode.USAGE


@needs_kubectl
def test_kustomize_renders_the_base(base: Path) -> None:
    docs = render(base)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "ConfigMap", "CronJob", "Deployment", "Namespace", "NetworkPolicy", "PodMonitor",
                     "PrometheusRule"]
    by_kind = {d["kind"]: d for d in docs if d["metadata"]["name"] != "cgpreset-dashboard"}
    assert all(d["metadata"].get("namespace") == "cgpreset" for d in docs if d["kind"] != "Namespace")
    assert all(d["metadata"]["annotations"]["cgpreset/min-kubernetes-version"] == MIN_KUBERNETES for d in docs)
    cm = by_kind["ConfigMap"]
    assert len(cm["data"]) == 10 and "sol.yaml" in cm["data"]
    cron, dep = by_kind["CronJob"], by_kind["Deployment"]
    for doc in (cron, dep):  # the generated ConfigMap's hashed name is what the pods mount
        assert pod_spec(doc)["volumes"][0]["configMap"]["name"] == cm["metadata"]["name"] != "cgpreset-configs"
    job = cron["spec"]["jobTemplate"]["spec"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid" and cron["spec"]["startingDeadlineSeconds"] > 0
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 4, 4)
    assert job["activeDeadlineSeconds"] > 0 and job["backoffLimit"] > 0
    rules = {r["action"]: r["onExitCodes"]["values"] for r in job["podFailurePolicy"]["rules"] if "onExitCodes" in r}
    assert rules == {"FailJob": [ExitCode.USAGE, ExitCode.API], "FailIndex": [ExitCode.FINDINGS],
                     "Count": [ExitCode.TEMPFAIL]}  # 75, a store failure that passes: retried
    env = {e["name"]: e for e in containers(cron)[0]["env"]}
    assert env["JOB_COMPLETIONS"]["value"] == "4"
    args = containers(cron)[0]["args"]
    assert args[:2] == ["run-preset", "/etc/cgpreset/configs"]
    assert int(args[args.index("--deadline") + 1]) < job["activeDeadlineSeconds"]
    probe = containers(dep)[0]["livenessProbe"]["exec"]["command"]
    assert probe[:2] == ["cgpreset", "stream-alive"]
    assert dep["spec"]["strategy"]["type"] == "Recreate"


@needs_kubectl
def test_secrets_only_by_reference_and_pods_locked_down(base: Path) -> None:
    for doc in render(base):
        if doc["kind"] not in ("CronJob", "Deployment"):
            continue
        for c in containers(doc):
            env = {e["name"]: e for e in c["env"]}
            for name, key in (("COINGLASS_API_KEY", "api-key"), ("CGPRESET_STORE", "store-dsn")):
                assert "value" not in env[name]
                assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "cgpreset", "key": key}
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert c["resources"]["requests"] and c["resources"]["limits"]
            # the kustomize image, tagged with the version that wrote the base (overlays set their registry);
            # never a floating tag: `latest` would be pulled from Docker Hub on every start
            assert c["image"] == f"cgpreset:{__version__}" and c["imagePullPolicy"] == "IfNotPresent"
        pod = pod_spec(doc)
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False  # cgpreset never talks to the Kubernetes API


@needs_kubectl
@pytest.mark.parametrize("version", [f"{MIN_KUBERNETES}.0", "1.31.0"])
def test_rendered_objects_validate_against_kubernetes_schemas_offline(base: Path, version: str) -> None:
    """kubernetes-validate ships the schemas in its package: no network is needed. The Prometheus
    Operator's kinds have no core schema: tests/test_kube_monitoring.py checks their structure."""
    import kubernetes_validate

    docs = render(base)
    core = [d for d in docs if d["kind"] not in CRD_KINDS]
    assert len(core) == len(docs) - len(CRD_KINDS)
    for doc in core:
        kubernetes_validate.validate(doc, version, strict=True)
    bad = next(d for d in core if d["kind"] == "CronJob")
    bad["spec"]["startingDeadlineSeconds"] = "soon"  # not an integer: the schema refuses it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, version, strict=True)


def _readme_block(marker: str) -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"```yaml\n({re.escape(marker)}.+?)```", readme, re.S)
    assert found, marker
    return found.group(1)


@needs_kubectl
def test_the_readmes_overlay_of_plain_files_renders_with_kubectl(base: Path) -> None:
    """README "Deploying": the overlay written by hand (no kustomize binary), with its ExternalSecret."""
    cluster = base.parents[1] / "cluster"
    cluster.mkdir()
    overlay = _readme_block("# cluster/kustomization.yaml")
    (cluster / "externalsecret.yaml").write_text(_readme_block("apiVersion: external-secrets.io/"), encoding="utf-8")
    (cluster / "kustomization.yaml").write_text(overlay, encoding="utf-8")
    docs = render(cluster)
    assert {c["image"] for d in docs if d["kind"] in ("CronJob", "Deployment") for c in containers(d)} == {
        "registry.example.com/markets/cgpreset:0.1.0"}
    secret = next(d for d in docs if d["kind"] == "ExternalSecret")
    assert secret["spec"]["target"]["name"] == "cgpreset"
    assert {x["secretKey"] for x in secret["spec"]["data"]} == {"api-key", "store-dsn"}
    assert all(d["metadata"]["labels"]["release"] == "kube-prometheus-stack" for d in docs)
    # the commented patch drops the PrometheusRule for a cluster without the Prometheus Operator
    (cluster / "kustomization.yaml").write_text(re.sub(r"^# (patches:|  )", r"\1", overlay, flags=re.M),
                                                encoding="utf-8")
    assert "PrometheusRule" not in {d["kind"] for d in render(cluster)}


def _pip_specs(command: str) -> set[str]:
    """What a `pip install` installs: its non-flag arguments."""
    words = shlex.split(command)
    start = words.index("install") + 1
    out: set[str] = set()
    for w in words[start:]:
        if w in ("&&", ";"):
            break
        if not w.startswith("-"):
            out.add(w)
    return out


def test_the_containerfile_installs_what_the_readme_installs_and_runs_as_non_root() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"Install and run the main job.*?```bash\n(.+?)\n```", readme, re.S)
    assert block
    containerfile = (REPO / "Containerfile").read_text(encoding="utf-8")
    run = next(line for line in containerfile.splitlines() if line.startswith("RUN") and "pip install" in line)
    assert _pip_specs(run) == _pip_specs(block.group(1)) == {"."}  # the package, no extras
    assert "python3 -m venv" in run and "python3 -m venv" in block.group(1)
    user = re.findall(r"^USER (\S+)", containerfile, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")


def test_the_containerfile_pins_its_base_image_to_a_release() -> None:
    """A patch release of Python on a named Debian release (or a digest), not `3.12-slim` or `latest`."""
    containerfile = (REPO / "Containerfile").read_text(encoding="utf-8")
    (base_image,) = re.findall(r"^FROM (\S+)", containerfile, re.M)
    assert re.fullmatch(r"docker\.io/library/python:3\.\d+\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?",
                        base_image), base_image
