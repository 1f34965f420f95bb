"""Layering rules, written down as import-linter contracts, hold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_import_contracts_are_kept() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    # the Pulumi program's and the CDK app's packages
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / d) for d in ("pulumi", "cdk"))}
    result = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            check=False, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Step and serving code imports no cloud SDK KEPT" in result.stdout
    assert "The CDK app imports no Pulumi code KEPT" in result.stdout


def test_step_modules_import_without_any_cloud_sdk() -> None:
    code = ("import sys, mlops_kit.steps.ingest, mlops_kit.steps.validate, "
            "mlops_kit.steps.features, mlops_kit.steps.train, mlops_kit.steps.evaluate, "
            "mlops_kit.steps.register, mlops_kit.serving.app, mlops_kit.serving.batch; "
            "print(sorted(m for m in ('boto3', 'botocore', 'moto') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip()
    assert out == "[]"
