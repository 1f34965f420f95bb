"""The toolchain the generated CI definitions install (kept in mlops_kit.project.toolchain)."""

from mlops_kit.project.toolchain import NODE, PYTHON

__all__ = ["NODE", "PYTHON"]
