"""One family of errors: each names the file or field, what is wrong and the fix.

The CLI prints any `MlopsKitError` as one line (`kind: message`) and exits with its
`exit_code`, never with a traceback.
"""

from __future__ import annotations

from pathlib import Path


class MlopsKitError(Exception):
    """Base of the errors a user can act on; `str()` is the whole message."""

    kind = "error"
    exit_code = 1


class StateFileError(MlopsKitError):
    """A state file (registry index, endpoint state, lake catalog) that cannot be used as is."""

    kind = "state error"

    def __init__(self, path: Path | str, problem: str, fix: str) -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}. {fix}")
