"""The loop report: the story of one pass (serve, drift, retrain, canary) as one HTML file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops_kit.config import LoadedConfig
from mlops_kit.runtime.report import STYLE, _e, _table, images

OUTCOMES = {
    "promoted": "drift was detected, a retrained model passed the gate and took all traffic "
                "after a canary",
    "rolled back": "drift was detected and a model was retrained, but its canary tripped an "
                   "alarm: traffic went back to the previous version",
    "unchanged": "drift was detected, but no retrained model beat production: nothing changed",
    "no drift": "no drift was detected: production stays as it is",
}


def write_loop_report(folder: Path, loaded: LoadedConfig) -> Path:
    """Render `report.html` from `loop.json` and the drift plots beside it."""
    doc = json.loads((folder / "loop.json").read_text())
    body = [
        f"<h1>{_e(loaded.config.project)}: loop {_e(doc['loop_id'])}</h1>",
        f"<p><b>Outcome: {_e(doc['outcome'])}</b>: {_e(OUTCOMES.get(doc['outcome'], ''))}. "
        f"Version {doc['start_version']} &rarr; {doc['final_version']}.</p>",
        "<h2>Timeline</h2>",
        _table([{"seconds": e["t"], "stage": e["stage"], "what happened": e["message"]}
                for e in doc["events"]]),
        "<h2>Traffic per phase</h2>",
        _table([{"phase": p["name"], **{k: v for k, v in p["traffic"].items()
                                        if k != "versions"}} for p in doc["phases"]]),
        *[_phase(p) for p in doc["phases"]],
    ]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>mlops-kit loop "
            f"{_e(doc['loop_id'])}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>")
    out = folder / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


def _phase(phase: dict[str, Any]) -> str:
    drift = phase.get("drift") or {}
    rows = [{"feature": f["name"], "psi": f.get("psi"), "ks p-value": f.get("ks_pvalue"),
             "missing": f.get("missing_current"), "violations": sum(f["violations"].values()),
             "drifted": "; ".join(f.get("reasons") or [])}
            for f in drift.get("features", [])]
    verdict = drift.get("verdict", "n/a")
    css = "bad" if verdict == "drift" else "ok"
    plots = images([Path(p) for p in phase.get("plots", [])[:12]])
    return (f"<h2>Monitoring: {_e(phase['name'])}</h2><p class='{css}'>verdict: "
            f"{_e(verdict)} ({drift.get('rows', 0)} rows)</p>{_table(rows)}{plots}")
