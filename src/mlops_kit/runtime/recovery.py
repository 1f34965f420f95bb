"""What a killed run leaves behind, found and cleaned by the next run (one warning per item).

A writer names its temp siblings with its pid (`fileio.TEMP_NAME`) and its scratch folders
`<state>/tmp/<pid>-...`, so only a dead process's leftovers are touched, never a live one's.
Temp names from before the pid was in them (`OLD_TEMP`) are removed once nothing in them has
changed for `OLD_TEMP_AGE_S` (no writer makes them any more, and none takes that long), but only
in the folders those writers put them in (`OLD_TEMP_FOLDERS`): the state folder may be $HOME or
/tmp, where the same names (`tmp<random>.tmp` is mkstemp's) belong to other programs.
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
# The temp names writers used before they put their pid in them: `.<name>.<random>.tmp` (a state
# file or an ack written, then renamed over <name>), `tmp<random>.tmp` (a Parquet part) and
# `.download-<random>` (a model copy being filled).
OLD_TEMP = re.compile(r"^(?:\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp|(?P<part>tmp[a-z0-9_]{8}\.tmp)"
                      r"|(?P<download>\.download-[a-z0-9_]{8}))$")
# The only folders (under the state folder; `*` is one folder, `**` any depth) old-style temps
# are swept in, each with the kind its writer left there: "part", "download", "replace" (also
# needs its <name> beside it) or "ack" (a gone worker's ack is removed, so no <name> is needed).
OLD_TEMP_FOLDERS: dict[str, str] = {
    "lake/**": "part",                 # table and partition folders
    "artifacts/**": "part",            # published step outputs
    "serving/models/*": "download",    # a model's version copies
    "registry/*": "replace",           # <model>/registry.json
    "registry/*/*": "replace",         # <model>/<version>/version.json
    "endpoints/*": "replace",          # <endpoint>/state.json
    "endpoints/*/workers": "ack",      # <endpoint>/workers/<host>-<pid>.json
    "runs/*": "replace",               # <run>/manifest.json
    "cache/*/*": "replace",            # <target>/<step>/<key>.json
    "loops/**": "replace",             # <loop>/loop.json and its reports
    "monitoring/*": "replace",         # <stamp>/drift.json
    "capacity/*": "replace",           # <stamp>/plan.json
}
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
                if old_style_temp(path, state):
                    if name in dirs:
                        dirs.remove(name)
                    kind = "folder" if path.is_dir() else "file"
                    if _remove(path):
                        notes.append(f"removed {path}, an old-style temp {kind} untouched for "
                                     f"over {OLD_TEMP_AGE_S / 3600:g} h")
                continue
            if name in dirs:
                dirs.remove(name)
            dest = path.with_name(match["name"])
            if match["kind"] == "old" and not dest.exists():
                path.replace(dest)
                notes.append(f"restored {dest} from {path.name} (a replace was cut short)")
            elif path.is_dir() and not path.is_symlink():
                if _remove(path):
                    notes.append(f"removed the half-written folder {path}")
            else:
                size = path.lstat().st_size
                if _remove(path):
                    notes.append(f"removed the half-written file {path} ({size} bytes)")
    return notes


def old_style_temp(path: Path, state: Path) -> bool:
    """Whether `path` is a temp file or folder of the old naming, in a folder of
    `OLD_TEMP_FOLDERS` that its writer used, with nothing in it changed for an hour. A
    symlink never is (no writer made one)."""
    match = OLD_TEMP.match(path.name)
    if match is None or TEMP_NAME.match(path.name) or path.is_symlink():
        return False
    kind = "part" if match["part"] else "download" if match["download"] else "replace"
    home = _old_temp_home(path.parent, state)
    if home is None or (kind != home and not (kind == "replace" and home == "ack")):
        return False
    if home == "replace" and not os.path.lexists(path.with_name(match["name"])):
        return False  # not beside the file it was to replace: perhaps not the kit's
    newest = _newest_mtime(path)
    return newest is not None and time.time() - newest > OLD_TEMP_AGE_S


def _old_temp_home(folder: Path, state: Path) -> str | None:
    """The kind of `OLD_TEMP_FOLDERS` entry `folder` matches, or None."""
    try:
        parts = folder.relative_to(state).parts
    except ValueError:
        return None
    for pattern, kind in OLD_TEMP_FOLDERS.items():
        want = pattern.split("/")
        if want[-1] == "**":
            if len(parts) >= len(want) - 1 and _same(parts, want[:-1]):
                return kind
        elif len(parts) == len(want) and _same(parts, want):
            return kind
    return None


def _same(parts: tuple[str, ...], want: list[str]) -> bool:
    return all(w in ("*", p) for p, w in zip(parts, want, strict=False))


def _newest_mtime(path: Path) -> float | None:
    """The newest mtime of `path` and, for a folder, of anything in it (symlinks not followed):
    a file growing inside does not change its folder's mtime. None if it cannot be read."""
    try:
        newest = path.lstat().st_mtime
    except OSError:
        return None
    for dirpath, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            try:
                newest = max(newest, (Path(dirpath) / name).lstat().st_mtime)
            except OSError:
                return None  # changing under us: not stale
    return newest


def _remove(path: Path) -> bool:
    """Remove `path` (a folder's tree; a symlink itself, never what it points at); whether it
    is gone."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass
    if os.path.lexists(path):
        log.warning("could not remove %s (left in place)", path)
        return False
    return True


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
