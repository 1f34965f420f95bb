"""The team's own code, named in the config by import path: `package.module:Name`.

One rule for every such name (an estimator today): `module:attr` or `module.attr`, imported
as Python would, with the project's `src/` folder (beside `mlops.yaml`) first on the path, so a
project runs from its folder before it is installed. In an image the package is installed.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?$")
REF_HELP = "'package.module:Name' (or 'package.module.Name')"


def import_object(ref: str, root: Path | None = None) -> Any:
    """The object `ref` names; ValueError says what failed and how to fix it."""
    if not REF.match(ref):
        raise ValueError(f"{ref!r} is not an import path; write {REF_HELP}")
    module_name, attr = _split(ref)
    if root is not None:
        _add_source_folder(root)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(_import_help(ref, module_name, exc, root)) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{ref!r}: module {module_name!r} has no {attr!r}") from None
    return obj


def _split(ref: str) -> tuple[str, str]:
    if ":" in ref:
        module_name, attr = ref.split(":", 1)
        return module_name, attr
    if "." not in ref:
        raise ValueError(f"{ref!r} names a module, not an object in it; write {REF_HELP}")
    module_name, attr = ref.rsplit(".", 1)
    return module_name, attr


def _add_source_folder(root: Path) -> None:
    src = str((root / "src").resolve())
    if Path(src).is_dir() and src not in sys.path:
        sys.path.insert(0, src)


def _import_help(ref: str, module_name: str, exc: ImportError, root: Path | None) -> str:
    missing = getattr(exc, "name", None) or module_name
    where = f" or put it in {root / 'src'}" if root is not None else ""
    return (f"cannot import {ref!r}: {exc}. Install the package that provides {missing!r} "
            f"in this environment (`pip install -e .` for the project's own package){where}")
