"""A deployment's traffic shifts, bakes and alarms, run by whoever holds its lease.

`mlops-kit deploy` starts a deployment with a plan (shifts, bake times, guardrails) and a lease
in its record in the endpoint state, and renews the lease while it runs. When the lease runs
out (the deployer was killed), a server worker takes the lease over (`take_over`) and runs the
rest of the plan from the shift in force: it finishes the bake, or rolls back on an alarm. The
record says who ended the deployment (`by`) and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from mlops_kit.serving import acks
from mlops_kit.serving.endpoint import EndpointState, EndpointStore, now
from mlops_kit.serving.metrics import read_window


class Stopped(Exception):
    """Another command (rollback) or process (the server) took the deployment over."""


@dataclass
class Plan:
    """What a deployment does and watches; kept in its record so any process can resume it."""

    shifts: list[float]
    wait_s: float
    termination_wait_s: float
    alarm_period_s: float
    min_invocations: int
    max_error_rate: float
    alarm_on_4xx: bool
    latency_p99_ms: float
    lease_s: float
    ack_timeout_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def alarm(plan: Plan, metrics: Path, version: int, since: float) -> str | None:
    """Why version's metrics since `since` breach a guardrail, or None (also when fewer than
    `min_invocations` requests: insufficient data, as in CloudWatch)."""
    window = read_window(metrics, since=int(since), versions=[version])
    if window.invocations < plan.min_invocations:
        return None
    failed = window.errors_5xx + (window.errors_4xx if plan.alarm_on_4xx else 0)
    rate = failed / window.invocations
    if rate > plan.max_error_rate:
        kind = "4xx or 5xx" if plan.alarm_on_4xx else "5xx"
        return (f"error-rate alarm: {rate:.1%} of {window.invocations} requests failed "
                f"with {kind} (limit {plan.max_error_rate:.1%})")
    p99 = window.percentile(99)
    if p99 > plan.latency_p99_ms:
        return f"latency alarm: p99 {p99:.1f} ms > {plan.latency_p99_ms:g} ms"
    return None


def lease(owner: str, seconds: float) -> dict[str, Any]:
    return {"owner": owner, "until": time.time() + seconds}


def expired(state: EndpointState, at: float) -> dict[str, Any] | None:
    """The deployment in progress whose deployer's lease ran out before `at`, if any."""
    record = state.current
    if record is None or record["status"] != "InProgress" or not record.get("lease"):
        return None
    return record if float(record["lease"]["until"]) < at else None


def take_over(store: EndpointStore, owner: str,
              on_event: Callable[[str], None] | None = None) -> Rollout | None:
    """Take the lease of a deployment whose deployer is gone; the Rollout to resume, or None
    (nothing expired, or another process took it first)."""
    with store.update() as state:
        record = expired(state, time.time())
        if record is None:
            return None
        gone = record["lease"]["owner"]
        record["lease"] = lease(owner, float(record["plan"]["lease_s"]))
        record.setdefault("takeovers", []).append({"from": gone, "by": owner, "at": now()})
    return Rollout(store, record["id"], owner, on_event=on_event,
                   takeover=f"the lease of {gone} expired")


class Rollout:
    """Runs one deployment's plan while holding its lease."""

    def __init__(self, store: EndpointStore, deployment_id: str, owner: str, *,
                 sleep: Callable[[float], None] = time.sleep,
                 on_event: Callable[[str], None] | None = None, takeover: str = "",
                 check: Callable[[int, float], str | None] | None = None) -> None:
        self.store = store
        self.id = deployment_id
        self.owner = owner
        self.sleep = sleep
        self.on_event = on_event or (lambda message: None)
        self.takeover = takeover
        record = self._record(store.read())
        self.plan = Plan(**record["plan"])
        self.green, self.blue = int(record["version"]), int(record["previous"])
        self.renewed = time.monotonic()
        self.check = check or (lambda version, since: alarm(self.plan, self.metrics, version,
                                                            since))

    @property
    def metrics(self) -> Path:
        return self.store.folder / "metrics"

    def run(self, start: int = 0) -> tuple[str, str]:
        """Shift and bake from shift `start` on; (status, reason) at the end."""
        try:
            for step in range(start, len(self.plan.shifts)):
                share = self._set_share(step)
                wait = self.plan.wait_s if share < 1.0 else self.plan.termination_wait_s
                reason = self._bake(wait)
                if reason is not None:
                    return self.finish("RolledBack", reason)
        except acks.WorkersNotConfirmed as exc:
            return self.finish("Failed", str(exc))
        except Stopped:
            pass  # finish reports what the other command or process recorded
        return self.finish("Succeeded", "")

    def resume(self) -> tuple[str, str]:
        """The server's side: bake the shift in force again, then the rest of the plan."""
        step = int(self._record(self.store.read()).get("step", -1))
        if step < 0:
            return self.finish("Failed", "it had not shifted any traffic yet")
        return self.run(step)

    def _set_share(self, step: int) -> float:
        share = self.plan.shifts[step]
        with self.store.update() as state:
            record = self._ours(state)
            state.variant(f"v{self.blue}").weight = round(1.0 - share, 6)
            state.variant(f"v{self.green}").weight = share
            record.update(step=step, lease=lease(self.owner, self.plan.lease_s))
        self.renewed = time.monotonic()
        self.on_event(f"traffic: {share:.0%} on version {self.green}, "
                      f"{1 - share:.0%} on version {self.blue}")
        self._confirm(state.generation)
        return share

    def _bake(self, seconds: float) -> str | None:
        """Watch green's alarms for `seconds`, renewing the lease; the alarm if one fires."""
        start = time.time()
        end = start + seconds
        while True:
            step = min(self.plan.alarm_period_s, self.plan.lease_s / 3, end - time.time())
            if step <= 0:
                return None
            self.sleep(step)
            self.renew()
            reason = self.check(self.green, max(start, time.time() - self.plan.alarm_period_s))
            if reason:
                return reason

    def renew(self, force: bool = False) -> None:
        """Extend the lease when a third of it has passed (Stopped if no longer ours)."""
        if not force and time.monotonic() - self.renewed < self.plan.lease_s / 3:
            self._ours(self.store.read())
            return
        with self.store.update() as state:
            self._ours(state)["lease"] = lease(self.owner, self.plan.lease_s)
        self.renewed = time.monotonic()

    def finish(self, status: str, reason: str) -> tuple[str, str]:
        """End the deployment: green keeps all traffic (Succeeded) or blue gets it back."""
        keep = f"v{self.green}" if status == "Succeeded" else f"v{self.blue}"
        with self.store.update() as state:
            record = self._record(state)
            mine = record["status"] == "InProgress" and record["lease"]["owner"] == self.owner
            if not mine:
                return record["status"], record.get("reason") or (
                    f"taken over by {record['lease']['owner']}")
            reason = self._by_server(status, reason)
            state.variants = [replace(state.variant(keep), weight=1.0)]
            record.update(status=status, ended=now(), reason=reason, by=self.owner, lease=None)
        self._report(status, reason)
        try:
            self._confirm(state.generation, holding=False)
        except acks.WorkersNotConfirmed as exc:
            if status == "Succeeded":
                raise
            reason = f"{reason}; {exc}"
        return status, reason

    def _by_server(self, status: str, reason: str) -> str:
        if not self.takeover:
            return reason
        word = "finished" if status == "Succeeded" else "rolled back"
        return f"{word} by the server: deployer gone ({self.takeover})" + (
            f"; {reason}" if reason else "")

    def _report(self, status: str, reason: str) -> None:
        if status == "Succeeded":
            self.on_event(f"version {self.green} took all traffic; version {self.blue} retired"
                          + (f" ({reason})" if reason else ""))
        else:
            word = "rolled back" if status == "RolledBack" else "failed"
            self.on_event(f"{word}: {reason}; all traffic on version {self.blue}")

    def _confirm(self, generation: int, holding: bool = True) -> None:
        """Wait for every live worker to serve `generation` (renewing the lease meanwhile)."""
        acks.confirm(self.store.folder / acks.FOLDER, generation, self.plan.ack_timeout_s,
                     keep_alive=self.renew if holding else None)

    def _record(self, state: EndpointState) -> dict[str, Any]:
        record = next((d for d in state.deployments if d["id"] == self.id), None)
        if record is None:
            raise Stopped(f"deployment {self.id} is no longer in the endpoint state")
        return record

    def _ours(self, state: EndpointState) -> dict[str, Any]:
        record = self._record(state)
        if record["status"] != "InProgress" or (record.get("lease") or {}).get(
                "owner") != self.owner:
            raise Stopped(f"deployment {self.id} was stopped or taken over by another process")
        return record
