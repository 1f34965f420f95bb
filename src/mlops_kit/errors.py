"""One family of errors: each names the file or field, what is wrong and the fix.

The CLI prints any `MlopsKitError` as one line (`kind: message`) and exits with its
`exit_code`, never with a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


def did_you_mean(unknown: Iterable[str], known: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the near misses among `unknown`, else an empty string."""
    choices = list(known)
    near = [m for u in unknown for m in difflib.get_close_matches(u, choices, n=1)]
    return f" (did you mean {', '.join(map(repr, near))}?)" if near else ""


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
