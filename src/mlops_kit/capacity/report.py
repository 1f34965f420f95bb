"""The planning report: traffic and capacity over time per policy (PNG), the table, the plan."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from mlops_kit.capacity.plan import Comparison
from mlops_kit.figures import pyplot, save
from mlops_kit.fileio import write_json_atomic
from mlops_kit.runtime.report import STYLE, _e, _table, images


def table_rows(comp: Comparison) -> list[dict[str, Any]]:
    """The table: one row per policy, with instance-hours as a multiple of the oracle's."""
    floor = comp.row("oracle").instance_hours
    return [{**asdict(r), "x oracle": round(r.instance_hours / floor, 3)} for r in comp.rows]


def plot(comp: Comparison, path: Path) -> Path:
    """One panel per policy: requests per minute and the serving capacity, overload in red."""
    plt = pyplot()
    hours = (np.arange(comp.trace.minutes) + comp.trace.start_minute) / 60.0
    fig, axes = plt.subplots(len(comp.runs), 1, figsize=(12, 2.2 * len(comp.runs)),
                             sharex=True, sharey=True)
    for ax, run, row in zip(np.atleast_1d(axes), comp.runs, comp.rows, strict=True):
        capacity = run.serving * comp.cloud.capacity_rpm
        ax.plot(hours, comp.trace.rpm, color="#555", lw=0.6, label="requests/min")
        ax.step(hours, capacity, where="post", color="#1a73e8", lw=1.0, label="capacity/min")
        over = comp.trace.rpm > capacity
        ax.scatter(hours[over], comp.trace.rpm[over], color="#d93025", s=6, label="overload")
        ax.set_title(f"{run.name}: {row.instance_hours:,.0f} instance-hours, "
                     f"{row.overload_minutes} overloaded minutes, {row.actions} actions",
                     fontsize=9, loc="left")
        ax.set_ylabel("requests/min")
    ax.set_xlabel("hours")
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=8)
    return save(fig, path)


def write_report(comp: Comparison, folder: Path, yaml_text: str,
                 measured: dict[str, Any] | None = None) -> Path:
    """`plan.json`, `scaling.png` and `report.html` in `folder`; the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    png = plot(comp, folder / "scaling.png")
    rows = table_rows(comp)
    write_json_atomic(folder / "plan.json", {
        "trace": comp.trace.name, "minutes": comp.trace.minutes, "cloud": asdict(comp.cloud),
        "policies": rows, "scaling": comp.scaling.model_dump(), "measured": measured,
        "search": {"evaluated": comp.plan.evaluated, "feasible": comp.plan.feasible,
                   "floors": comp.plan.note,
                   "noise_overloads": list(comp.plan.noise_overloads),
                   "held_out": asdict(comp.plan.held_out) if comp.plan.held_out else None}})
    cloud = comp.cloud
    body = [
        f"<h1>Scaling plan: {_e(comp.trace.name)}</h1>",
        f"<p>{comp.trace.minutes:,} minutes; one instance serves {cloud.capacity_rpm:,.0f} "
        f"requests/min within the latency objective; {cloud.min_instances} to "
        f"{cloud.max_instances} instances, {cloud.startup_s} s start-up, "
        f"{cloud.price_per_hour} per instance-hour.</p>",
        _table(rows),
        f"<p>The search simulated {comp.plan.evaluated} step policies"
        + ("" if comp.plan.feasible else
           " and <b class='bad'>none stayed within the overload budget</b>") + ". "
        f"Scheduled floors: {_e(comp.plan.note)}.{_noise_text(comp)}</p>",
        "<h2>Planned scaling section</h2>", f"<pre>{_e(yaml_text)}</pre>",
        "<h2>Traffic and capacity</h2>", images([png]),
    ]
    if measured:
        body += ["<h2>Measured capacity</h2>", _table(measured.get("steps", []))]
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>mlops-kit scaling plan"
            f"</title><style>{STYLE}</style></head><body>" + "\n".join(body) + "</body></html>")
    out = folder / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


def _noise_text(comp: Comparison) -> str:
    """The plan's overload on the noise replicates, if it was checked on any."""
    noisy = comp.plan.noise_overloads
    if not noisy:
        return ""
    return (f" With the trace's minute-to-minute noise redrawn {len(noisy)} times, the plan "
            f"overloads {list(noisy)} minutes.")
