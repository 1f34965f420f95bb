"""The Pulumi program of the project around the current folder: a project's `__main__.py` is
`from mlops_pulumi.main import main` / `main()`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_pulumi.config import StackError, from_pulumi
from mlops_pulumi.program import deploy


def project_root(start: Path) -> Path:
    """The nearest folder at or above `start` holding a Pulumi.yaml; StackError if none."""
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    raise StackError(f"no Pulumi.yaml in {start} or above it: run pulumi in the project folder "
                     "(the one holding Pulumi.yaml and mlops.yaml)")


def main() -> Any:
    """Deploy the running stack of the project (`pulumi up -s <stack>`)."""
    return deploy(from_pulumi(project_root(Path.cwd())))
