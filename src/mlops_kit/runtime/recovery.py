"""What a killed run leaves behind, found and cleaned by the next run (one warning per item).

A writer names its temp siblings with its pid (`fileio.TEMP_NAME`) and its scratch folders
`<state>/tmp/<pid>-...`, so only a dead process's leftovers are touched, never a live one's.
Temp names from before the pid was in them (`OLD_TEMP`) are removed once older than
`OLD_TEMP_AGE_S`: no writer makes them any more, and none takes that long.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from pathlib import Path

from mlops_kit.config import LoadedConfig
from mlops_kit.fileio import TEMP_NAME, pid_alive, stale_temp

log = logging.getLogger(__name__)
# `.<name>.<random>.tmp` (state files, acks), `tmp<random>.tmp` (Parquet parts), `.download-*`
# (model copies): the temp names writers used before they put their pid in them.
OLD_TEMP = re.compile(r"^(?:\..+\.[a-z0-9_]{8}\.tmp|tmp[a-z0-9_]{8}\.tmp|\.download-[a-z0-9_]{8})$")
OLD_TEMP_AGE_S = 3600.0


def recover(loaded: LoadedConfig) -> list[str]:
    """Clean the state folder of dead runs' leftovers, rebuild a corrupt lake catalog and
    end the MLflow runs a killed process left RUNNING; return what was done."""
    from mlops_kit.tracking import end_local_orphans

    state = loaded.state_dir
    notes = sweep_work_dirs(state) + sweep_temps(state) + repair_catalog(loaded)
    for note in notes:
        log.warning("recovered: %s", note)
    end_local_orphans(loaded)
    return notes


def sweep_work_dirs(state: Path) -> list[str]:
    """Remove `<state>/tmp/<pid>-*` folders whose process is gone."""
    notes = []
    root = state / "tmp"
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            notes.append(f"removed the work folder {folder} of dead process {pid}")
    return notes


def sweep_temps(state: Path) -> list[str]:
    """Remove dead writers' temp files and stage folders; put back a folder a replace moved
    aside (`.old`) when the kill came before its replacement was renamed in."""
    notes = []
    for dirpath, dirs, files in os.walk(state):
        for name in [*dirs, *files]:
            path = Path(dirpath) / name
            match = stale_temp(path)
            if match is None:
                if old_style_temp(path):
                    if name in dirs:
                        dirs.remove(name)
                    notes.append(_remove_old(path))
                continue
            if name in dirs:
                dirs.remove(name)
            dest = path.with_name(match["name"])
            if match["kind"] == "old" and not dest.exists():
                path.replace(dest)
                notes.append(f"restored {dest} from {path.name} (a replace was cut short)")
            elif path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                notes.append(f"removed the half-written folder {path}")
            else:
                size = path.stat().st_size
                path.unlink(missing_ok=True)
                notes.append(f"removed the half-written file {path} ({size} bytes)")
    return notes


def old_style_temp(path: Path) -> bool:
    """Whether `path` is a temp file or folder of the old naming, untouched for an hour."""
    if not OLD_TEMP.match(path.name) or TEMP_NAME.match(path.name):
        return False
    try:
        return time.time() - path.lstat().st_mtime > OLD_TEMP_AGE_S
    except OSError:
        return False


def _remove_old(path: Path) -> str:
    kind = "folder" if path.is_dir() else "file"
    if kind == "folder":
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return f"removed {path}, an old-style temp {kind} untouched for over " \
        f"{OLD_TEMP_AGE_S / 3600:g} h"


def repair_catalog(loaded: LoadedConfig) -> list[str]:
    """Rebuild `catalog.json` from the lake folders if it cannot be read."""
    from mlops_kit.runtime.files import JsonCatalog
    from mlops_kit.runtime.lake import rebuild_catalog

    catalog = JsonCatalog(loaded.state_dir / "catalog.json")
    problem = catalog.problem()
    if problem is None:
        return []
    tables = rebuild_catalog(loaded)
    return [f"{catalog.path}: {problem}; rebuilt it from the lake folders ({len(tables)} "
            "tables; the bad file is kept as catalog.json.corrupt-*)"]
