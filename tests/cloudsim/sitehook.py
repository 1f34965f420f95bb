"""The one thing a pipeline harness adds to a job's environment: a `PYTHONPATH` folder whose
`sitecustomize` points one cloud adapter module at stand-in clients (there is no emulator of
the Vertex AI or Azure ML registries here), when the job first imports that module."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

TEMPLATE = Path(__file__).with_name("_sitecustomize.py")


def write_site(folder: Path, module: str, installer: str, **arguments: Any) -> dict[str, str]:
    """Write the `sitecustomize` into `folder`; the environment entry that enables it.
    `installer` (`package.module:function`) is called as `function(module, **arguments)`."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEMPLATE, folder / "sitecustomize.py")
    (folder / "standins.json").write_text(json.dumps({
        "root": str(ROOT), "module": module, "installer": installer,
        "arguments": arguments}))
    return {"PYTHONPATH": str(folder)}
