"""The project image's entry point on a Vertex AI endpoint: fetch the model, then serve it.

Vertex copies a version's `artifact_uri` to `$AIP_STORAGE_URI` and routes requests to
`$AIP_HTTP_PORT`; the inference server reads a local folder and a port, so this copies the files
into `$SM_MODEL_DIR` (`/opt/ml/model`) and starts `python -m mlops_kit.serving serve` there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def fetch(storage: Any, uri: str, dest: Path) -> int:
    """Copy every object under the `gs://` folder `uri` into `dest`; the number copied."""
    bucket, _, key = uri.removeprefix("gs://").partition("/")
    prefix = key.rstrip("/") + "/" if key.strip("/") else ""
    count = 0
    for blob in storage.list_blobs(bucket, prefix=prefix):
        rel = blob.name[len(prefix):]
        if rel and not rel.endswith("/"):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            blob.download_to_filename(str(dest / rel))
            count += 1
    if not count:
        raise FileNotFoundError(f"no model files at {uri}")
    return count


def main(storage: Any = None) -> int:
    uri = os.environ.get("AIP_STORAGE_URI")
    if not uri:
        print("error: AIP_STORAGE_URI is not set (Vertex AI sets it on a deployment)",
              file=sys.stderr)
        return 2
    if storage is None:
        from google.cloud import storage as gcs

        storage = gcs.Client()
    fetch(storage, uri, Path(os.environ.setdefault("SM_MODEL_DIR", "/opt/ml/model")))
    os.environ.setdefault("SAGEMAKER_BIND_TO_PORT", os.environ.get("AIP_HTTP_PORT", "8080"))
    from mlops_kit.serving.__main__ import main as serve

    return serve(["serve"])


if __name__ == "__main__":
    sys.exit(main())
