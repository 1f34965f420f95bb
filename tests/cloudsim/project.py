"""The project every cloud's pipeline harness runs: the example churn project on a CSV source,
small (2,000 rows a day, two trials), with the repository's code, pipeline and image recipe.

Each day's delivery is its own CSV file (its rows differ day to day, with a share of dirty rows
that validation must quarantine), so two runs on two ingest dates show whether any row is read
twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from mlops_kit.config import deep_merge
from mlops_kit.datasets import churn
from tests.conftest import ROOT

DAYS = ("2026-01-05", "2026-01-06")
ROWS = 2000
COMMIT = "c0ffee" + "0" * 34
LINKED = ("src", "docker", "cdk", "pyproject.toml", "README.md", "cdk.json")


def write_project(folder: Path, changes: dict[str, Any] | None = None) -> Path:
    """A project folder laid out as the repository (code linked), its config on a CSV source
    of the shape `day_csv` writes; returns the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        if not (folder / name).exists():
            (folder / name).symlink_to(ROOT / name)
    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    raw.pop("cicd", None)
    raw = deep_merge(raw, {
        "data": {"source": {"kind": "csv", "path": "data/landing"}},
        "model": {"search": {"trials": 2}, "params": {"n_estimators": 40}},
        # each run trains on its own day: a candidate may trail production by a little
        "quality_gate": {"min_value": 0.6, "min_gain": -0.2}})
    raw["data"]["source"] = {"kind": "csv", "path": "data/landing"}
    raw = deep_merge(raw, changes or {})
    path = folder / "mlops.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def day_csv(path: Path, day: str) -> Path:
    """One day's delivery: `ROWS` rows, dirty ones included, different for every day."""
    seed = int(day.replace("-", "")) % 10_000
    frame = churn.generate(ROWS, seed=seed, start=day, dirty_fraction=0.02)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def partition_rows(table: Path) -> dict[str, int]:
    """Rows per `ingest_date=` partition of a lake table folder (empty if there is none)."""
    out: dict[str, int] = {}
    for part in sorted(table.glob("ingest_date=*")):
        files = sorted(part.rglob("*.parquet"))
        out[part.name.split("=", 1)[1]] = sum(pq.read_metadata(f).num_rows for f in files)
    return out


LINEAGE_FIELDS = ("data_version", "curated_version", "ingest_date", "model_digest",
                  "pipeline_run", "config_digest", "environment")


def missing_lineage(lineage: dict[str, Any], commit: str = COMMIT) -> list[str]:
    """The lineage fields a registered version lacks (empty: complete), the commit included."""
    missing = [f for f in LINEAGE_FIELDS if not lineage.get(f)]
    if (lineage.get("git") or {}).get("commit") != commit:
        missing.append(f"git.commit (got {(lineage.get('git') or {}).get('commit')!r})")
    if not {"python", "mlops-kit", "pandas"} <= set(lineage.get("packages") or {}):
        missing.append("packages")
    return missing
