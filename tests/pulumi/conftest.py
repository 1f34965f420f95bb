"""Mocks first (before any component is imported), then a two-model Azure/GCP config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.pulumi.mocks import MOCKS, RecordingMocks


@pytest.fixture
def mocks() -> RecordingMocks:
    MOCKS.reset()
    return MOCKS


def two_models(folder: Path, changes: dict[str, Any] | None = None) -> Path:
    """The example config with two models, both pinned for serving on Azure."""
    from mlops_kit.config import deep_merge

    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    first = raw.pop("model")
    raw["models"] = [first, {"name": "churn-mlp", "framework": "pytorch",
                             "params": {"epochs": 3}}]
    raw = deep_merge(raw, {"azure": {"deploy_versions": {"churn-classifier": "3",
                                                         "churn-mlp": "1"}}})
    raw = deep_merge(raw, changes or {})
    path = folder / "mlops.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
