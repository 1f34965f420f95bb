"""Safe deployment of a local endpoint, with SageMaker deployment guardrails' semantics.

Blue/green: the new version (green) joins the endpoint with no traffic and must load; traffic
then shifts all at once, canary (a share, bake, the rest) or linear (equal steps, bake after
each). During every bake, and for `termination_wait_s` after the full shift, the green
variant's alarms are evaluated each `alarm_period_s` on the metrics the serving workers write:
5xx rate (plus 4xx with `alarm_on_4xx`) over `max_error_rate`, or p99 latency (from each
request's arrival, 4xx excluded) over `serving.latency_p99_ms`.
An alarm rolls all traffic back to blue at once. A period with fewer than `min_invocations`
requests is insufficient data and never an alarm, as with CloudWatch.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import DeploymentConfig
from mlops_kit.registry import RegistryError, open_registry
from mlops_kit.runtime.serving import fetch_version
from mlops_kit.serving.endpoint import (
    EndpointState,
    EndpointStore,
    Variant,
    endpoint_name,
    now,
)
from mlops_kit.serving.handler import model_fn
from mlops_kit.serving.metrics import read_window


class DeployError(Exception):
    """A deployment that cannot start (unknown or unapproved version, one already running)."""


class Stopped(DeployError):
    """Another command (mlops-kit rollback) ended this deployment while it ran."""


def endpoint_dir(loaded: LoadedConfig) -> Path:
    return loaded.state_dir / "endpoints" / _name(loaded)


def endpoint_store(loaded: LoadedConfig) -> EndpointStore:
    return EndpointStore(endpoint_dir(loaded) / "state.json", _name(loaded))


def _name(loaded: LoadedConfig) -> str:
    return endpoint_name(loaded.config.project, loaded.config.model.name)


@dataclass
class DeployResult:
    status: str  # Succeeded, RolledBack, Failed, NoChange
    version: int
    previous: int | None
    reason: str = ""
    events: list[str] = field(default_factory=list)


def shifts(cfg: DeploymentConfig) -> list[float]:
    """The green variant's traffic share after each shift."""
    if cfg.strategy == "all_at_once":
        return [1.0]
    if cfg.strategy == "canary":
        return [cfg.canary_percent / 100, 1.0]
    step = cfg.linear_step_percent / 100
    count = int(1 / step + 1e-9)
    return [round(min(1.0, step * (i + 1)), 6) for i in range(count)] + (
        [1.0] if step * count < 1 - 1e-9 else [])


class Deployer:
    """Runs one blue/green deployment to completion or rollback."""

    def __init__(self, loaded: LoadedConfig, *, sleep: Callable[[float], None] = time.sleep,
                 on_event: Callable[[str], None] | None = None,
                 deployment: DeploymentConfig | None = None) -> None:
        self.loaded = loaded
        self.cfg = deployment or loaded.config.serving.deployment
        self.latency_ms = loaded.config.serving.latency_p99_ms
        self.store = endpoint_store(loaded)
        self.metrics = endpoint_dir(loaded) / "metrics"
        self.sleep = sleep
        self.on_event = on_event or (lambda message: None)
        self.events: list[str] = []

    def _event(self, message: str) -> None:
        self.events.append(message)
        self.on_event(message)

    def deploy(self, version: int | None = None) -> DeployResult:
        """Deploy a registry version (production if None) to the endpoint."""
        model_dir, chosen = fetch_version(self.loaded, version)
        if chosen.status != "Approved":
            raise DeployError(f"version {chosen.version} is {chosen.status}: approve it first "
                              f"(mlops-kit registry approve {chosen.version})")
        green = Variant(f"v{chosen.version}", chosen.version, str(model_dir), 0.0)
        deployment_id = uuid.uuid4().hex[:8]
        with self.store.update() as state:
            blue = state.live
            if blue is None:
                _healthy(green)
                green.weight = 1.0
                state.variants = [green]
                record = _record(deployment_id, green, None, "initial", "Succeeded")
                record["ended"] = record["started"]
                state.deployments.append(record)
                self._event(f"endpoint created with version {green.version} (all traffic)")
                return DeployResult("Succeeded", green.version, None, events=self.events)
            if blue.version == green.version and len(state.variants) == 1:
                return DeployResult("NoChange", green.version, blue.version,
                                    f"version {green.version} is already live")
            if state.deployments and state.deployments[-1]["status"] == "InProgress":
                raise DeployError("a deployment is already in progress "
                                  f"({state.deployments[-1]['id']}): wait, or mlops-kit rollback")
            state.variants = [blue, green]
            state.deployments.append(_record(deployment_id, green, blue.version,
                                             self.cfg.strategy, "InProgress"))
        self._event(f"deployment {deployment_id}: version {blue.version} -> {green.version} "
                    f"({self.cfg.strategy})")
        return self._run(deployment_id, blue, green)

    def _run(self, deployment_id: str, blue: Variant, green: Variant) -> DeployResult:
        try:
            _healthy(green)
        except DeployError as exc:
            return self._finish(deployment_id, blue, green, "Failed", str(exc))
        self._event(f"version {green.version} loaded and healthy")
        try:
            for share in shifts(self.cfg):
                self._set_share(deployment_id, blue, green, share)
                wait = self.cfg.wait_s if share < 1.0 else self.cfg.termination_wait_s
                alarm = self._bake(deployment_id, green, wait)
                if alarm is not None:
                    return self._finish(deployment_id, blue, green, "RolledBack", alarm)
        except Stopped:
            pass  # _finish reports the stop recorded by the other command
        return self._finish(deployment_id, blue, green, "Succeeded", "")

    def _set_share(self, deployment_id: str, blue: Variant, green: Variant, share: float) -> None:
        with self.store.update() as state:
            self._still_ours(state, deployment_id)
            state.variant(blue.name).weight = round(1.0 - share, 6)
            state.variant(green.name).weight = share
        self._event(f"traffic: {share:.0%} on version {green.version}, "
                    f"{1 - share:.0%} on version {blue.version}")

    def _bake(self, deployment_id: str, green: Variant, seconds: float) -> str | None:
        """Watch green's alarms for `seconds`; the alarm's reason if one fires."""
        start = time.time()
        end = start + seconds
        while True:
            step = min(self.cfg.alarm_period_s, max(0.0, end - time.time()))
            if step <= 0:
                return None
            self.sleep(step)
            self._still_ours(self.store.read(), deployment_id)
            alarm = self.alarm(green.version, max(start, time.time() - self.cfg.alarm_period_s))
            if alarm:
                return alarm

    def alarm(self, version: int, since: float) -> str | None:
        """Why version's metrics since `since` breach a guardrail, or None."""
        window = read_window(self.metrics, since=int(since), versions=[version])
        if window.invocations < self.cfg.min_invocations:
            return None
        failed = window.errors_5xx + (window.errors_4xx if self.cfg.alarm_on_4xx else 0)
        rate = failed / window.invocations
        if rate > self.cfg.max_error_rate:
            kind = "4xx or 5xx" if self.cfg.alarm_on_4xx else "5xx"
            return (f"error-rate alarm: {rate:.1%} of {window.invocations} requests failed "
                    f"with {kind} (limit {self.cfg.max_error_rate:.1%})")
        p99 = window.percentile(99)
        if p99 > self.latency_ms:
            return f"latency alarm: p99 {p99:.1f} ms > {self.latency_ms:g} ms"
        return None

    def _still_ours(self, state: EndpointState, deployment_id: str) -> None:
        current = next((d for d in state.deployments if d["id"] == deployment_id), None)
        if current is None or current["status"] != "InProgress":
            raise Stopped(f"deployment {deployment_id} was stopped by another command")

    def _finish(self, deployment_id: str, blue: Variant, green: Variant, status: str,
                reason: str) -> DeployResult:
        keep = green if status == "Succeeded" else blue
        with self.store.update() as state:
            record = next(d for d in state.deployments if d["id"] == deployment_id)
            if record["status"] != "InProgress":  # stopped meanwhile (mlops-kit rollback)
                status, reason = record["status"], record["reason"]
            else:
                state.variants = [replace(keep, weight=1.0)]
                record.update(status=status, ended=now(), reason=reason)
        if status == "Succeeded":
            self._event(f"version {green.version} took all traffic; version {blue.version} "
                        "retired")
        else:
            word = "rolled back" if status == "RolledBack" else "failed"
            self._event(f"{word}: {reason}; all traffic on version {blue.version}")
        return DeployResult(status, green.version, blue.version, reason, self.events)


def _healthy(variant: Variant) -> None:
    """The new fleet's health check: its model must load (DeployError if not)."""
    try:
        model_fn(variant.model_dir)
    except Exception as exc:
        raise DeployError(f"version {variant.version} failed its health check: "
                          f"{type(exc).__name__}: {exc}") from exc


def _record(deployment_id: str, green: Variant, previous: int | None, strategy: str,
            status: str) -> dict[str, Any]:
    return {"id": deployment_id, "version": green.version, "previous": previous,
            "strategy": strategy, "status": status, "started": now(), "ended": None,
            "reason": ""}


def rollback(loaded: LoadedConfig) -> DeployResult:
    """Return all traffic at once to the previous approved version that was live."""
    store = endpoint_store(loaded)
    registry = open_registry(loaded)
    model = loaded.config.model.name
    with store.update() as state:
        running = state.deployments[-1] if state.deployments else None
        if running and running["status"] == "InProgress":
            blue = state.variant(f"v{running['previous']}")
            state.variants = [replace(blue, weight=1.0)]
            running.update(status="RolledBack", ended=now(), reason="stopped by mlops-kit rollback")
            return DeployResult("RolledBack", running["version"], blue.version, running["reason"])
        live = state.live
        if live is None:
            raise DeployError("the endpoint has no version yet: mlops-kit deploy first")
        target = _previous_approved(state, live.version, registry, model)
        model_dir, _ = fetch_version(loaded, target)
        state.variants = [Variant(f"v{target}", target, str(model_dir), 1.0)]
        record = _record(uuid.uuid4().hex[:8], state.variants[0], live.version, "rollback",
                         "Succeeded")
        record["ended"] = record["started"]
        state.deployments.append(record)
    return DeployResult("Succeeded", target, live.version, "rolled back")


def _previous_approved(state: EndpointState, live: int, registry: Any, model: str) -> int:
    """Follow the deployments back from `live` to the version it replaced, skipping versions
    no longer approved (a rollback record never counts as the way a version went live)."""
    current = live
    for record in reversed(state.deployments):
        if (record["status"] != "Succeeded" or record["strategy"] == "rollback"
                or record["version"] != current):
            continue
        candidate = record.get("previous")
        if candidate is None:
            break
        try:
            if registry.get(model, candidate).status == "Approved":
                return int(candidate)
        except RegistryError:
            pass
        current = candidate
    raise DeployError(f"no earlier approved version to roll back to from version {live}")


def set_shadow(loaded: LoadedConfig, version: int | None, percent: float | None = None) -> None:
    """Mirror `percent` of traffic to `version` (None: stop shadowing)."""
    store = endpoint_store(loaded)
    with store.update() as state:
        if version is None:
            state.shadow = None
            return
        if state.live is None:
            raise DeployError("the endpoint has no live version to shadow")
        model_dir, chosen = fetch_version(loaded, version)
        share = (percent or loaded.config.serving.deployment.shadow_percent) / 100
        state.shadow = Variant(f"shadow-v{chosen.version}", chosen.version, str(model_dir), share)
        state.shadow_started = time.time()
