"""Blue/green deployment on a live local endpoint: canary shift, automatic rollback on a
failing candidate, manual rollback, shadow traffic; and the guardrail logic on its own."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_kit.config import LoadedConfig, load_config
from mlops_kit.config.model import DeploymentConfig
from mlops_kit.registry import open_registry
from mlops_kit.runtime.deploy import (
    Deployer,
    DeployError,
    endpoint_dir,
    endpoint_store,
    rollback,
    set_shadow,
    shifts,
)
from mlops_kit.serving.metrics import MetricsWriter
from mlops_kit.serving.shadow import shadow_report
from tests.conftest import Trained, write_config
from tests.test_serving import GOOD, server

FAST = {"serving": {"deployment": {"strategy": "canary", "canary_percent": 30, "wait_s": 2.0,
                                   "termination_wait_s": 1.0, "alarm_period_s": 0.5,
                                   "min_invocations": 5}}}


def register_copy(loaded: LoadedConfig, model_dir: Path, tmp: Path, status: str = "Approved",
                  extra_column: bool = False, broken: bool = False) -> int:
    """Register a copy of `model_dir`; with `extra_column` it needs a column nobody sends
    (clients get 4xx); `broken` loads but fails every prediction (5xx)."""
    copy = tmp / f"copy-{time.monotonic_ns()}"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("version.json"))
    if extra_column:
        spec = json.loads((copy / "feature_spec.json").read_text())
        spec["schema"]["columns"].append({"name": "plan", "type": "category", "nullable": False,
                                          "categories": ["basic", "pro"]})
        spec["features"].append({"name": "plan", "transform": "one_hot", "inputs": ["plan"]})
        (copy / "feature_spec.json").write_text(json.dumps(spec))
    if broken:  # one feature more than the booster was trained on: predict raises
        spec = json.loads((copy / "feature_spec.json").read_text())
        spec["features"].append({"name": "age_again", "inputs": ["age"]})
        (copy / "feature_spec.json").write_text(json.dumps(spec))
    version = open_registry(loaded).register(
        "churn-classifier", copy, status=status,  # type: ignore[arg-type]
        metrics={"roc_auc": 0.8}, params={}, lineage={})
    return version.version


class Traffic:
    """Posts a request every few ms from a thread; counts answers per model version."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.versions: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            conn.request("POST", "/invocations", GOOD, {"Content-Type": "text/csv"})
            resp = conn.getresponse()
            resp.read()
            self.versions[resp.getheader("x-mlops-model-version") or "?"] += 1
            self.statuses[resp.status] += 1
            time.sleep(0.004)
        conn.close()

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture
def endpoint(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[tuple[LoadedConfig, int, Path]]:
    """A live endpoint of this test's own: a registry holding only the trained version 1 (put
    live by the server's first start) and `mlops-kit serve` on it, this test's state pointed
    at it. Each test gets a fresh one: the tests register, deploy and roll back versions."""
    folder = tmp_path / "endpoint"
    state = folder / "state"
    shutil.copytree(trained.state / "registry", state / "registry")
    config = write_config(folder, FAST)
    monkeypatch.setenv("MLOPS_STATE_DIR", str(state))
    loaded = load_config(config)
    with server(None, config, state) as port:
        yield loaded, port, folder


@pytest.fixture
def endpoint_on_v2(endpoint: tuple[LoadedConfig, int, Path],
                   trained: Trained) -> tuple[LoadedConfig, int, Path]:
    """The endpoint after a successful deployment of version 2 over version 1."""
    loaded, _, folder = endpoint
    v2 = register_copy(loaded, trained.model_dir, folder)
    assert v2 == 2
    all_at_once = loaded.config.serving.deployment.model_copy(update={"strategy": "all_at_once"})
    result = Deployer(loaded, deployment=all_at_once).deploy(v2)
    assert (result.status, result.previous) == ("Succeeded", 1), result
    return endpoint


def test_canary_shifts_traffic_then_promotes(endpoint: tuple[LoadedConfig, int, Path],
                                             trained: Trained) -> None:
    loaded, port, folder = endpoint
    v2 = register_copy(loaded, trained.model_dir, folder)
    events: list[str] = []
    with Traffic(port) as traffic:
        result = Deployer(loaded, on_event=events.append).deploy(v2)
        time.sleep(0.6)
    assert result.status == "Succeeded", result
    assert any("30% on version 2" in e for e in events), events
    assert traffic.versions["1"] > 0 and traffic.versions["2"] > 0  # both served mid-deploy
    assert set(traffic.statuses) == {200}
    state = endpoint_store(loaded).read()
    assert [(v.version, v.weight) for v in state.variants] == [(v2, 1.0)]
    assert state.deployments[-1]["status"] == "Succeeded"


def test_failing_candidate_is_rolled_back_by_its_alarm(endpoint: tuple[LoadedConfig, int, Path],
                                                       trained: Trained) -> None:
    loaded, port, folder = endpoint
    live = endpoint_store(loaded).read().live
    assert live is not None
    bad = register_copy(loaded, trained.model_dir, folder, broken=True)
    with Traffic(port) as traffic:
        result = Deployer(loaded).deploy(bad)
        time.sleep(0.6)
        after = traffic.versions.copy()
        time.sleep(0.5)
    assert result.status == "RolledBack"
    assert "error-rate alarm" in result.reason and "with 5xx" in result.reason
    assert traffic.statuses[500] > 0  # the canary's share failed...
    state = endpoint_store(loaded).read()
    assert [v.version for v in state.variants] == [live.version]  # ...and is gone
    assert traffic.versions - after == Counter({str(live.version): traffic.versions[
        str(live.version)] - after[str(live.version)]})


def test_manual_rollback_and_shadow(endpoint_on_v2: tuple[LoadedConfig, int, Path]) -> None:
    loaded, port, _ = endpoint_on_v2
    before = endpoint_store(loaded).read().live
    assert before is not None and before.version == 2
    result = rollback(loaded)
    assert (result.previous, result.version) == (2, 1)
    with pytest.raises(DeployError, match="no earlier approved version"):
        rollback(loaded)  # v1 was the first: a second rollback must not flip back to v2
    time.sleep(0.6)
    status = json.loads(http_get(port, "/ping"))
    assert [v["version"] for v in status["variants"]] == ["1"]

    set_shadow(loaded, 2, 100)
    time.sleep(0.6)
    with Traffic(port):
        time.sleep(1.0)
    set_shadow(loaded, None)
    time.sleep(0.6)
    report = shadow_report(endpoint_dir(loaded) / "shadow", "binary")
    assert report.requests > 10 and report.errors == 0
    assert (report.live_version, report.shadow_version) == (1, 2)
    assert report.agreement == 1.0 and report.mean_abs_diff < 1e-6  # same model, same answers


def test_unapproved_version_is_refused(endpoint: tuple[LoadedConfig, int, Path],
                                       trained: Trained) -> None:
    loaded, _, folder = endpoint
    pending = register_copy(loaded, trained.model_dir, folder, status="PendingManualApproval")
    with pytest.raises(DeployError, match="approve it first"):
        Deployer(loaded).deploy(pending)


def http_get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    body = conn.getresponse().read()
    conn.close()
    return body


@pytest.mark.parametrize(("changes", "expected"), [
    ({"strategy": "all_at_once"}, [1.0]),
    ({"strategy": "canary", "canary_percent": 10}, [0.1, 1.0]),
    ({"strategy": "linear", "linear_step_percent": 25}, [0.25, 0.5, 0.75, 1.0]),
    ({"strategy": "linear", "linear_step_percent": 30}, [0.3, 0.6, 0.9, 1.0]),
])
def test_traffic_shifts(changes: dict[str, object], expected: list[float]) -> None:
    assert shifts(DeploymentConfig(**changes)) == expected  # type: ignore[arg-type]


def test_alarms_need_data_and_fire_on_errors_or_latency(tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path, {"serving": {"latency_p99_ms": 50}}))
    deployer = Deployer(loaded)
    writer = MetricsWriter(endpoint_dir(loaded) / "metrics")
    start = time.time() - 1
    for _ in range(5):
        writer.observe("v2", 2, 500, 1.0)
    writer.flush()
    assert deployer.alarm(2, start) is None  # 5 < min_invocations: insufficient data
    for _ in range(95):
        writer.observe("v2", 2, 200, 1.0)
    writer.flush()
    assert "error-rate alarm: 5.0% of 100 requests failed with 5xx" in (
        deployer.alarm(2, start) or "")
    for _ in range(100):
        writer.observe("v5", 5, 400, 1.0)  # clients' bad requests are not the model's fault
    writer.flush()
    assert deployer.alarm(5, start) is None
    strict = Deployer(loaded, deployment=loaded.config.serving.deployment.model_copy(
        update={"alarm_on_4xx": True}))
    assert "with 4xx or 5xx" in (strict.alarm(5, start) or "")
    for _ in range(100):
        writer.observe("v3", 3, 200, 80.0)
    writer.flush()
    assert "latency alarm" in (deployer.alarm(3, start) or "")
    for _ in range(100):
        writer.observe("v6", 6, 408, 500.0)  # slow clients' timeouts: not the model's latency
    writer.flush()
    assert deployer.alarm(6, start) is None
    assert deployer.alarm(4, start) is None


def test_rollback_during_a_deploy_wins(trained: Trained, tmp_path: Path) -> None:
    """A rollback landing while the deployer evaluates an alarm is not overwritten."""
    loaded = load_config(write_config(tmp_path, FAST))
    v1 = register_copy(loaded, trained.model_dir, tmp_path)
    v2 = register_copy(loaded, trained.model_dir, tmp_path)
    Deployer(loaded).deploy(v1)

    class Interrupted(Deployer):
        def alarm(self, version: int, since: float) -> str | None:
            if endpoint_store(loaded).read().deployments[-1]["status"] == "InProgress":
                rollback(loaded)
            return None

    result = Interrupted(loaded).deploy(v2)
    assert result.status == "RolledBack" and "stopped by mlops-kit rollback" in result.reason
    state = endpoint_store(loaded).read()
    assert [(v.version, v.weight) for v in state.variants] == [(v1, 1.0)]
    assert state.deployments[-1]["status"] == "RolledBack"
