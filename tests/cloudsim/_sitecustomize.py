"""A job process's `sitecustomize` (copied by `sitehook.write_site` beside `standins.json`):
when the module that `standins.json` names is first imported, call its installer on it, so
a cloud adapter in the job talks to the harness's stand-in clients. Nothing else changes."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

SETTINGS = json.loads(Path(__file__).with_name("standins.json").read_text())


class AfterImport(importlib.abc.MetaPathFinder):
    """Finds `module` with the other finders and runs `installer` once it has executed."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != SETTINGS["module"]:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            load(module)
            where, _, name = SETTINGS["installer"].partition(":")
            getattr(importlib.import_module(where), name)(module, **SETTINGS["arguments"])

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


sys.path.append(SETTINGS["root"])  # the repository, where the stand-ins live
sys.meta_path.insert(0, AfterImport())
