"""Loaded by every job the Azure ML harness runs (tests/cloudsim/azureml.py puts this folder
on the job's PYTHONPATH): the one thing the harness adds to a job's environment.

There is no Azure ML registry here. When a job imports `mlops_kit.adapters.azure.registry`,
the function that would build an `MLClient` on the real registry (`_client`) is replaced by
one returning the stand-in client of tests/cloudsim/azureml_registry.py, kept under
`$CLOUDSIM_AZUREML_REGISTRIES/<registry>/`. Everything else, the registry adapter included,
runs unchanged.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

TARGET = "mlops_kit.adapters.azure.registry"
STAND_IN = Path(__file__).resolve().parents[1] / "azureml_registry.py"


def stand_in_client(credential: Any, subscription: str, registry: str) -> Any:
    spec = importlib.util.spec_from_file_location("cloudsim_azureml_registry", STAND_IN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = Path(os.environ["CLOUDSIM_AZUREML_REGISTRIES"]) / registry
    return module.StandInClient(folder / "storage", registry, folder / "state.json")


class _Patch(importlib.abc.MetaPathFinder):
    """Finds the registry adapter as usual and patches it once it has loaded."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != TARGET:
            return None
        others = [f for f in sys.meta_path if f is not self and hasattr(f, "find_spec")]
        spec = next((s for f in others if (s := f.find_spec(name, path, target))), None)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            module._client = stand_in_client  # type: ignore[attr-defined]

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if os.environ.get("CLOUDSIM_AZUREML_REGISTRIES"):
    sys.meta_path.insert(0, _Patch())
