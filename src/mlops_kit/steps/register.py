"""Register: a new model version with its lineage, only if the candidate passed the gate."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from mlops_kit.registry import ModelVersion, Registry, Status
from mlops_kit.registry.base import RUN_FILE, model_digest
from mlops_kit.steps.base import (
    Job,
    StepError,
    StepSpec,
    job_main,
    read_json,
    read_lineage,
    write_json,
)

SPEC = StepSpec("register", "processing", inputs=("model", "evaluation"),
                outputs=("registration",))
PACKAGES = ("mlops-kit", "xgboost-cpu", "xgboost", "torch", "scikit-learn", "pandas", "numpy",
            "pyarrow", "duckdb", "mlflow-skinny")


def git_commit(folder: Path) -> dict[str, Any]:
    """The commit the code came from (`MLOPS_GIT_COMMIT`, baked into the project image at build)
    and whether it was dirty."""
    if os.environ.get("MLOPS_GIT_COMMIT"):
        return {"commit": os.environ["MLOPS_GIT_COMMIT"], "dirty": False}
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=folder, capture_output=True, text=True, check=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": head, "dirty": bool(dirty)}


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def lineage(job: Job, model_dir: Path, training: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to reproduce the version: data, code, config, packages, runs. The
    data versions come with the model (`_lineage.json`), its digest from its own files (not
    the run file's timings), so every cloud records the same lineage from the step's inputs
    alone. The MLflow run id is in the run file (`training.json` in older model folders)."""
    data = read_lineage(model_dir)
    run_file = model_dir / RUN_FILE
    training = {**training, **(read_json(run_file) if run_file.is_file() else {})}
    return {
        "data_version": data.get("data_version"),
        "curated_version": data.get("curated_version"),
        "ingest_date": data.get("ingest_date"),
        "git": git_commit(job.config.root),
        "config_digest": job.config.digest,
        "environment": job.config.env,
        "packages": package_versions(),
        "pipeline_run": job.params.get("run_id"),
        "mlflow_run_id": training.get("mlflow_run_id"),
        "tracking": training.get("tracking"),
        **({"tracking_problem": training["tracking_problem"]}
           if training.get("tracking_problem") else {}),
        "model_digest": model_digest(model_dir)["digest"],
    }


def run(job: Job) -> dict[str, Any]:
    cfg = job.config.config
    evaluation = read_json(job.input("evaluation") / "evaluation.json")
    out = job.output("registration")
    if not evaluation["passed"]:
        write_json({"registered": False, "reasons": evaluation["reasons"]},
                   out / "registration.json")
        return {"registered": False}
    registry: Registry | None = job.services.get("registry")
    if registry is None:
        raise StepError("no model registry was given to the register step")
    model_dir = job.input("model")
    training = read_json(model_dir / "training.json")
    record = lineage(job, model_dir, training)
    same = [v for v in registry.versions(cfg.model.name)
            if v.expected_digest == record["model_digest"]]
    if same:
        return unchanged(same[-1], record, out)
    status: Status = "Approved" if cfg.registry.approval == "auto" else "PendingManualApproval"
    version = registry.register(
        cfg.model.name, model_dir, status=status, metrics=evaluation["metrics"],
        params=training["best_params"], lineage=record,
        description=f"{cfg.project}: {'; '.join(evaluation['reasons'])}"[:1000],
    )
    write_json({"registered": True, **version.to_dict()}, out / "registration.json")
    return {"registered": True, "version": version.version, "status": version.status}


def unchanged(same: ModelVersion, record: dict[str, Any], out: Path) -> dict[str, Any]:
    """No new version for a model identical to `same`: the registration names it and keeps
    this run's own lineage apart (the version's lineage stays the run that made it)."""
    reason = f"unchanged: same as version {same.version}"
    write_json({"registered": False, "unchanged": True, "already": same.to_dict(),
                "lineage": record, "reasons": [reason]}, out / "registration.json")
    return {"registered": False, "unchanged": f"same as version {same.version}",
            "already_version": same.version}


def main(argv: list[str] | None = None) -> int:
    return job_main(SPEC, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
