"""Container entry point: `python -m mlops_kit.serving serve`, as SageMaker starts an image.

Serves `/opt/ml/model` (or `$SM_MODEL_DIR`; on Azure ML, the registered folder under
`$AZUREML_MODEL_DIR`) on `$SAGEMAKER_BIND_TO_PORT` (8080) with
`$SAGEMAKER_MODEL_SERVER_WORKERS` workers (the CPU count).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from mlops_kit.serving.app import ServeSettings, serve

AZURE_FOLDER = "mlops-model"  # the folder the Azure ML registry adapter uploads


def model_dir(env: Mapping[str, str]) -> str:
    """SageMaker's `$SM_MODEL_DIR`, else Azure ML's mount of the registered folder, else
    SageMaker's default path."""
    if env.get("SM_MODEL_DIR"):
        return env["SM_MODEL_DIR"]
    if env.get("AZUREML_MODEL_DIR"):
        return str(Path(env["AZUREML_MODEL_DIR"]) / AZURE_FOLDER)
    return "/opt/ml/model"


def main(argv: list[str]) -> int:
    if argv[:1] != ["serve"]:
        print("usage: python -m mlops_kit.serving serve", file=sys.stderr)
        return 2
    settings = ServeSettings(
        model_dir=model_dir(os.environ),
        model=os.environ.get("MLOPS_MODEL_NAME", "model"),
        version=os.environ.get("MLOPS_MODEL_VERSION", "0"),
        workers=int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1)),
        max_payload_mb=float(os.environ.get("MLOPS_MAX_PAYLOAD_MB", "6")),
    )
    serve(settings, host="0.0.0.0", port=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")),
          log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
