"""mlops-kit: one config and one code base from notebook to a production ML platform."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Project", "__version__"]

if TYPE_CHECKING:
    from mlops_kit.api import Project


def __getattr__(name: str) -> Any:
    """`mlops_kit.Project`, imported on first use (so `import mlops_kit` stays light)."""
    if name == "Project":
        from mlops_kit.api import Project

        return Project
    raise AttributeError(f"module 'mlops_kit' has no attribute {name!r}")
