"""Safe deployment of a local endpoint, with SageMaker deployment guardrails' semantics.

Blue/green: the new version (green) joins the endpoint with no traffic and must load; traffic
then shifts all at once, canary (a share, bake, the rest) or linear (equal steps, bake after
each). During every bake, and for `termination_wait_s` after the full shift, the green
variant's alarms are evaluated each `alarm_period_s` on the metrics the serving workers write:
5xx rate (plus 4xx with `alarm_on_4xx`) over `max_error_rate`, or p99 latency (from each
request's arrival, 4xx excluded) over `serving.latency_p99_ms`.
An alarm rolls all traffic back to blue at once. A period with fewer than `min_invocations`
requests is insufficient data and never an alarm, as with CloudWatch.

Every change waits until each live server worker serves it (`serving/acks.py`), and the
deployer holds a lease in the deployment's record, so the server finishes or rolls back a
deployment whose deployer died (`serving/rollout.py`).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import DeploymentConfig
from mlops_kit.errors import MlopsKitError
from mlops_kit.registry import RegistryError, open_registry
from mlops_kit.runtime.serving import fetch_version
from mlops_kit.serving import acks
from mlops_kit.serving.endpoint import (
    EndpointState,
    EndpointStore,
    Variant,
    endpoint_name,
    now,
)
from mlops_kit.serving.handler import model_fn
from mlops_kit.serving.rollout import Plan, Rollout, lease
from mlops_kit.serving.rollout import alarm as plan_alarm


class DeployError(MlopsKitError):
    """A deployment that cannot start (unknown or unapproved version, one already running)."""

    kind = "deploy error"


def endpoint_dir(loaded: LoadedConfig) -> Path:
    return loaded.state_dir / "endpoints" / _name(loaded)


def endpoint_store(loaded: LoadedConfig) -> EndpointStore:
    return EndpointStore(endpoint_dir(loaded) / "state.json", _name(loaded))


def _name(loaded: LoadedConfig) -> str:
    return endpoint_name(loaded.config.project, loaded.config.model.name)


@dataclass
class DeployResult:
    status: str  # Succeeded, RolledBack, Failed, NoChange (InProgress: taken over)
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


def plan(cfg: DeploymentConfig, latency_p99_ms: float) -> Plan:
    """The plan a deployment's record carries (so the server can resume it)."""
    return Plan(shifts(cfg), cfg.wait_s, cfg.termination_wait_s, cfg.alarm_period_s,
                cfg.min_invocations, cfg.max_error_rate, cfg.alarm_on_4xx, latency_p99_ms,
                cfg.lease_s, cfg.ack_timeout_s)


def confirm(loaded: LoadedConfig, generation: int) -> int:
    """Wait until every live server worker serves `generation` (WorkersNotConfirmed if not)."""
    return acks.confirm(endpoint_dir(loaded) / acks.FOLDER, generation,
                        loaded.config.serving.deployment.ack_timeout_s)


class Deployer:
    """Runs one blue/green deployment to completion or rollback."""

    def __init__(self, loaded: LoadedConfig, *, sleep: Callable[[float], None] = time.sleep,
                 on_event: Callable[[str], None] | None = None,
                 deployment: DeploymentConfig | None = None) -> None:
        self.loaded = loaded
        self.cfg = deployment or loaded.config.serving.deployment
        self.plan = plan(self.cfg, loaded.config.serving.latency_p99_ms)
        self.store = endpoint_store(loaded)
        self.metrics = endpoint_dir(loaded) / "metrics"
        self.sleep = sleep
        self.on_event = on_event or (lambda message: None)
        self.events: list[str] = []
        self.owner = f"mlops-kit deploy (pid {os.getpid()} on {socket.gethostname()})"

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
                result = self._initial(state, deployment_id, green)
            elif blue.version == green.version and len(state.variants) == 1:
                return DeployResult("NoChange", green.version, blue.version,
                                    f"version {green.version} is already live")
            else:
                self._start(state, deployment_id, blue, green)
        if blue is None:
            confirm(self.loaded, state.generation)
            return result
        self._event(f"deployment {deployment_id}: version {blue.version} -> {green.version} "
                    f"({self.cfg.strategy})")
        rollout = Rollout(self.store, deployment_id, self.owner, sleep=self.sleep,
                          on_event=self._event, check=self.alarm)
        try:
            _healthy(green)
        except DeployError as exc:
            status, reason = rollout.finish("Failed", str(exc))
        else:
            self._event(f"version {green.version} loaded and healthy")
            status, reason = rollout.run()
        return DeployResult(status, green.version, blue.version, reason, self.events)

    def _start(self, state: EndpointState, deployment_id: str, blue: Variant,
               green: Variant) -> None:
        """Add green with no traffic and the deployment's record (plan and lease)."""
        running = state.current
        if running and running["status"] == "InProgress":
            raise DeployError(f"a deployment is already in progress ({running['id']}, "
                              f"{_holder(running)}): wait, or mlops-kit rollback")
        state.variants = [blue, green]
        record = _record(deployment_id, green, blue.version, self.cfg.strategy, "InProgress")
        record.update(plan=self.plan.to_dict(), step=-1,
                      lease=lease(self.owner, self.plan.lease_s))
        state.deployments.append(record)

    def _initial(self, state: EndpointState, deployment_id: str,
                 green: Variant) -> DeployResult:
        _healthy(green)
        green.weight = 1.0
        state.variants = [green]
        record = _record(deployment_id, green, None, "initial", "Succeeded")
        record["ended"] = record["started"]
        state.deployments.append(record)
        self._event(f"endpoint created with version {green.version} (all traffic)")
        return DeployResult("Succeeded", green.version, None, events=self.events)

    def alarm(self, version: int, since: float) -> str | None:
        """Why version's metrics since `since` breach a guardrail, or None."""
        return plan_alarm(self.plan, self.metrics, version, since)


def _holder(record: dict[str, Any]) -> str:
    held = record.get("lease")
    if not held:
        return "no lease"
    left = float(held["until"]) - time.time()
    if left >= 0:
        return f"held by {held['owner']} for {left:.0f} s more"
    return (f"its deployer {held['owner']} is gone: a running `mlops-kit serve` finishes or "
            "rolls it back")


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
    """Return all traffic at once to the previous approved version that was live; confirmed
    by every live server worker."""
    store = endpoint_store(loaded)
    registry = open_registry(loaded)
    model = loaded.config.model.name
    with store.update() as state:
        running = state.current
        if running and running["status"] == "InProgress":
            blue = state.variant(f"v{running['previous']}")
            state.variants = [replace(blue, weight=1.0)]
            running.update(status="RolledBack", ended=now(), reason="stopped by mlops-kit rollback",
                           by="mlops-kit rollback", lease=None)
            result = DeployResult("RolledBack", running["version"], blue.version,
                                  running["reason"])
        else:
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
            result = DeployResult("Succeeded", target, live.version, "rolled back")
    confirm(loaded, state.generation)
    return result


def reset_endpoint(loaded: LoadedConfig) -> tuple[int, Path | None]:
    """Rebuild the endpoint state with the registry's production version live (all traffic);
    the version and the backup of the old file (None if there was none). Works on a file
    that cannot be read; a readable file keeps its history."""
    store = endpoint_store(loaded)
    model_dir, chosen = fetch_version(loaded, None)
    with store.lock():
        old, backup = _readable(store), None
        if store.path.exists():
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
            backup = store.path.with_name(f"{store.path.name}.bad-{stamp}")
            shutil.copy2(store.path, backup)
        state = old or EndpointState(store.name)
        for record in state.deployments:
            if record["status"] == "InProgress":
                record.update(status="Failed", ended=now(), lease=None,
                              reason="ended by mlops-kit endpoint reset")
        seen = [a.generation for a in acks.live(store.folder / acks.FOLDER)]
        state.generation = max([state.generation, *seen]) + 1  # above any worker's ack
        state.variants = [Variant(f"v{chosen.version}", chosen.version, str(model_dir), 1.0)]
        state.shadow = None
        record = _record(uuid.uuid4().hex[:8], state.variants[0], None, "reset", "Succeeded")
        record.update(ended=record["started"], reason="rebuilt from the registry's production "
                      "version" + (f"; the old file is kept as {backup.name}" if backup else ""))
        state.deployments.append(record)
        store.write(state)
    confirm(loaded, state.generation)
    return chosen.version, backup


def _readable(store: EndpointStore) -> EndpointState | None:
    try:
        return store.read() if store.path.exists() else None
    except MlopsKitError:
        return None


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
        elif state.live is None:
            raise DeployError("the endpoint has no live version to shadow")
        else:
            model_dir, chosen = fetch_version(loaded, version)
            share = (percent or loaded.config.serving.deployment.shadow_percent) / 100
            state.shadow = Variant(f"shadow-v{chosen.version}", chosen.version, str(model_dir),
                                   share)
            state.shadow_started = time.time()
    confirm(loaded, state.generation)
