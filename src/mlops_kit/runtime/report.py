"""The run report: one self-contained HTML file (plots inlined) next to the run's manifest."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from mlops_kit.config import LoadedConfig

STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;font-size:13px}th{background:#f4f4f4}.ok{color:#137333}.bad{color:#b3261e}
.grid{display:flex;flex-wrap:wrap;gap:8px}.grid img{border:1px solid #eee}
code{background:#f6f6f6;padding:1px 4px}h2{border-bottom:1px solid #ddd;padding-bottom:3px}"""


def write_report(run_dir: Path, loaded: LoadedConfig) -> Path:
    """Render `report.html` from the manifest and the artifacts it points at."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    steps = {s["name"]: s for s in manifest["steps"]}
    body = [
        f"<h1>{_e(loaded.config.project)}: run {_e(manifest['run_id'])}</h1>",
        _overview(manifest),
        _steps_table(manifest["steps"]),
        _validation(steps.get("validate")),
        _evaluation(steps.get("evaluate"), loaded.config.quality_gate.metric),
        _registration(steps.get("register")),
        _lineage(manifest),
    ]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>mlops-kit run "
            f"{_e(manifest['run_id'])}</title><style>{STYLE}</style></head><body>"
            + "\n".join(b for b in body if b) + "</body></html>")
    out = run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    heads = list(rows[0])
    head = "".join(f"<th>{_e(h)}</th>" for h in heads)
    body = "".join("<tr>" + "".join(f"<td>{_e(_fmt(r.get(h)))}</td>" for h in heads) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _local(out: dict[str, Any] | None) -> Path | None:
    uri = (out or {}).get("uri")
    path = Path(uri) if uri and not str(uri).startswith("s3://") else None
    return path if path is not None and path.exists() else None


def _images(folder: Path | None, names: list[str] | None = None) -> str:
    if folder is None or not folder.is_dir():
        return ""
    return images([folder / n for n in names] if names else sorted(folder.glob("*.png")))


def images(files: list[Path]) -> str:
    """The PNG files that exist, inlined, in a grid."""
    tags = []
    for f in files:
        if f.is_file():
            data = base64.b64encode(f.read_bytes()).decode()
            tags.append(f"<img alt='{_e(f.stem)}' src='data:image/png;base64,{data}'>")
    return f"<div class='grid'>{''.join(tags)}</div>" if tags else ""


def _overview(m: dict[str, Any]) -> str:
    cls = "ok" if m["status"] == "succeeded" else "bad"
    overhead = (m["seconds"] / m["compute_seconds"] - 1) if m["compute_seconds"] else 0.0
    return (f"<p>Status <b class='{cls}'>{_e(m['status'])}</b> on target <code>"
            f"{_e(m['target'])}</code>, {m['seconds']:.1f} s wall, {m['compute_seconds']:.1f} s "
            f"in step code (orchestration overhead {overhead:.0%}). Config <code>"
            f"{_e(m['config']['path'])}</code> (digest {_e(m['config']['digest'][:12])}).</p>")


def _steps_table(steps: list[dict[str, Any]]) -> str:
    rows = [{"step": s["name"], "status": s["status"], "seconds": round(s["seconds"], 2),
             "compute s": round(s["compute_seconds"], 2),
             "summary": ", ".join(f"{k}={_fmt(v)}" for k, v in s["summary"].items()),
             "error": s.get("error") or ""} for s in steps]
    return "<h2>Steps</h2>" + _table(rows)


def _validation(step: dict[str, Any] | None) -> str:
    folder = _local((step or {}).get("outputs", {}).get("profile"))
    if folder is None:
        return ""
    val = json.loads((folder / "validation.json").read_text())
    parts = ["<h2>Data validation and profile</h2>",
             f"<p>{val['rows_in']} rows in = {val['valid']} valid + {val['quarantined']} "
             f"quarantined ({val['bad_fraction']:.2%}, limit {val['max_bad_fraction']:.0%}).</p>",
             _table([{"reason": k, "rows": v} for k, v in list(val["reasons"].items())[:15]])]
    prof_path = folder / "profile.json"
    if prof_path.is_file():
        prof = json.loads(prof_path.read_text())
        rows = [{"column": name, "type": c["type"], "missing": c["missing_fraction"],
                 "mean": c.get("mean"), "std": c.get("std"), "min": c.get("min"),
                 "max": c.get("max"), "distinct": c.get("distinct")}
                for name, c in prof["columns"].items()]
        parts += [_table(rows), _images(folder / "plots")]
    return "\n".join(parts)


def _evaluation(step: dict[str, Any] | None, metric: str) -> str:
    folder = _local((step or {}).get("outputs", {}).get("evaluation"))
    if folder is None:
        return ""
    ev = json.loads((folder / "evaluation.json").read_text())
    cls, verdict = ("ok", "passed") if ev["passed"] else ("bad", "failed")
    prod = ev.get("production_metrics") or {}
    rows = [{"metric": k, "candidate": v, "production": prod.get(k)}
            for k, v in ev["metrics"].items()]
    reasons = "".join(f"<li>{_e(r)}</li>" for r in ev["reasons"])
    return (f"<h2>Evaluation</h2><p>Quality gate on <code>{_e(metric)}</code>: <b class='{cls}'>"
            f"{verdict}</b> on {ev['rows']} held-out rows.</p><ul>{reasons}</ul>"
            + _table(rows) + _images(folder / "plots", ev.get("plots")))


def _registration(step: dict[str, Any] | None) -> str:
    folder = _local((step or {}).get("outputs", {}).get("registration"))
    if folder is None:
        return ""
    reg = json.loads((folder / "registration.json").read_text())
    if not reg["registered"]:
        why = "; ".join(reg.get("reasons") or [])
        return f"<h2>Registration</h2><p class='bad'>Not registered: {_e(why)}</p>"
    return (f"<h2>Registration</h2><p>Registered <b>{_e(reg['model'])}</b> version "
            f"<b>{reg['version']}</b> as <b>{_e(reg['status'])}</b> at <code>"
            f"{_e(reg['artifact_uri'])}</code>.</p>"
            f"<pre>{_e(json.dumps(reg['lineage'], indent=2))}</pre>")


def _lineage(m: dict[str, Any]) -> str:
    rows = []
    for s in m["steps"]:
        for ch, out in (s.get("outputs") or {}).items():
            rows.append({"step": s["name"], "output": ch, "digest": out["digest"][:16],
                         "files": len(out["files"]), "uri": out["uri"]})
    git = m.get("git") or {}
    return (f"<h2>Artifacts and lineage</h2><p>git {_e(git.get('commit'))} "
            f"(dirty: {_e(git.get('dirty'))}), code digest {_e(m['code_digest'][:16])}.</p>"
            + _table(rows))
