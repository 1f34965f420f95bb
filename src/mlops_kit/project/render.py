"""An `Inferred` project as `mlops.yaml` text: one flow-style line per column and feature,
each followed by a comment saying what was inferred and why."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from mlops_kit.project.infer import Inferred

PARAMS = {"n_estimators": 200, "max_depth": 5, "learning_rate": 0.1}
SPACE = {"max_depth": {"int": [3, 7]}, "learning_rate": {"loguniform": [0.03, 0.3]}}
TRIALS = 4
WIDTH = 99


def as_dict(inf: Inferred) -> dict[str, Any]:
    """The project config as plain data; sections left out take their defaults."""
    schema: dict[str, Any] = {"table": inf.table, "target": inf.role("target")}
    for role in ("entity_id", "event_time"):
        if inf.role(role):
            schema[role] = inf.role(role)
    schema["columns"] = [_column(g.column) for g in inf.columns]
    return {
        "project": inf.project,
        "data": {"source": inf.source.model_dump(exclude_defaults=True) | {
                     "kind": inf.source.kind},
                 "max_bad_fraction": inf.max_bad_fraction, "schema": schema},
        "features": {"group": f"{inf.table}_features"[:63], "split": inf.split,
                     "declared": [_feature(f) for f in inf.features]},
        "model": {"name": f"{inf.project}-model"[:41].strip("-"), "task": inf.task,
                  "framework": "xgboost", "params": dict(PARAMS),
                  "search": {"trials": TRIALS, "space": dict(SPACE)}},
        "quality_gate": {"metric": inf.metric},
        "environments": {},
    }


def to_yaml(inf: Inferred) -> str:
    """The commented mlops.yaml text; `yaml.safe_load` of it gives `as_dict(inf)`."""
    data = as_dict(inf)
    schema = data["data"]["schema"]
    lines = [f"# Inferred by mlops-kit from {inf.source.path} ({'; '.join(inf.notes)}).",
             "# Review it: every inferred value carries its reason. Sections left out (serving,",
             "# monitoring, registry, training...) take their defaults (docs/config.md).",
             _scalar("project", data["project"]),
             "", "data:",
             "  source: " + _flow(data["data"]["source"]),
             _scalar("  max_bad_fraction", data["data"]["max_bad_fraction"]), "  schema:",
             _scalar("    table", schema["table"]),
             _scalar("    target", schema["target"]) + f"  # {inf.task_reason}"]
    for role in ("entity_id", "event_time"):
        if role in schema:
            lines.append(_scalar(f"    {role}", schema[role]))
    lines.append("    columns:")
    for g, col in zip(inf.columns, schema["columns"], strict=True):
        lines += [*_comment(g.reasons, "      "), "      - " + _flow(col)]
    features = data["features"]
    lines += ["", "features:", _scalar("  group", features["group"]),
              _scalar("  split", features["split"]) + f"  # {inf.split_reason}",
              "  declared:"]
    for f, spec in zip(inf.features, features["declared"], strict=True):
        lines.append(f"    - {_flow(spec)}  # {f.reason}")
    model = data["model"]
    lines += ["", "model:", _scalar("  name", model["name"]),
              _scalar("  task", model["task"]) + f"  # {inf.task_reason}",
              _scalar("  framework", model["framework"]),
              "  params: " + _flow(model["params"]), "  search:",
              _scalar("    trials", model["search"]["trials"]),
              "    space: " + _flow(model["search"]["space"]), "",
              f"quality_gate:  # {inf.metric} suits a {inf.task} task; no minimum until you "
              "set min_value", "  metric: " + _flow(inf.metric), "",
              "environments: {}  # local only; add aws, azure or gcp environments "
              "(docs/config.md#environments-and-overrides)", ""]
    return "\n".join(lines)


def _comment(reasons: list[str], indent: str) -> list[str]:
    """Reasons as comment lines of at most WIDTH characters."""
    return textwrap.wrap("; ".join(reasons), WIDTH, initial_indent=f"{indent}# ",
                         subsequent_indent=f"{indent}#   ", break_on_hyphens=False)


def _column(col: Any) -> dict[str, Any]:
    out = col.model_dump(exclude_none=True)
    if out.get("nullable") is True:
        del out["nullable"]  # the default
    for key in ("min", "max"):
        if key in out and float(out[key]).is_integer():
            out[key] = int(out[key])
    return out


def _feature(f: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name}
    if f.transform != "identity":
        out["transform"] = f.transform
    out["inputs"] = list(f.inputs)
    return out


def _flow(value: Any) -> str:
    """One value as a single line of flow-style YAML (quoted where YAML needs it)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True,
                          sort_keys=False)
    return text.removesuffix("\n...\n").removesuffix("\n")


def _scalar(key: str, value: Any) -> str:
    return f"{key}: {_flow(value)}"
