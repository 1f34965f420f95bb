"""Container entry point: `python -m mlops_kit.serving serve`, as SageMaker starts an image.

Serves `/opt/ml/model` (or `$SM_MODEL_DIR`) on `$SAGEMAKER_BIND_TO_PORT` (8080) with
`$SAGEMAKER_MODEL_SERVER_WORKERS` workers (the CPU count).
"""

from __future__ import annotations

import os
import sys

from mlops_kit.serving.app import ServeSettings, serve


def main(argv: list[str]) -> int:
    if argv[:1] != ["serve"]:
        print("usage: python -m mlops_kit.serving serve", file=sys.stderr)
        return 2
    settings = ServeSettings(
        model_dir=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"),
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
