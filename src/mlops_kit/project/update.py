"""`mlops-kit init --update`: re-apply the installed kit's template to a project.

`init` records the digest of every file it wrote in `.mlops-kit-init.json`. An update renders
the template again (the recorded answers, the project's own mlops.yaml for the CI files) and,
file by file, compares the project's copy with the recorded digest: a file the team has not
changed takes the new render; a file both the team and the template changed is kept and the new
render written beside it as `<file>.new`; a file the team deleted stays deleted. mlops.yaml is
the team's: never rewritten (the CHANGELOG's upgrade notes say what to change in it). Each
write is a temp file renamed into place (fileio.write_bytes_atomic) and the record is written
last, so an update cut short is finished by running it again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from mlops_kit import __version__
from mlops_kit.errors import MlopsKitError, StateFileError
from mlops_kit.fileio import read_json_state, write_bytes_atomic, write_json_atomic

RECORD = ".mlops-kit-init.json"
ANSWERS = ".copier-answers.yml"
OWNED = frozenset({"mlops.yaml"})  # the team's from the first render on


class UpdateError(MlopsKitError):
    """A project folder `init --update` cannot update."""

    kind = "update error"
    exit_code = 2


@dataclass
class Update:
    """What an update did, by relative path."""

    updated: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # kept; `<file>.new` written
    kept_deleted: list[str] = field(default_factory=list)
    kept_changed: list[str] = field(default_factory=list)  # dropped by the template, yours


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, str]:
    """Digest of each file under `folder` but the record itself (paths relative, posix)."""
    return {p.relative_to(folder).as_posix(): digest(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != RECORD and "__pycache__" not in p.parts}


def write_record(folder: Path, files: dict[str, str], *, inferred: bool) -> None:
    """The record of what the kit rendered: its version, each file's digest and whether
    mlops.yaml was inferred (`init --from`: the template renders some files for that)."""
    write_json_atomic(folder / RECORD, {"kit_version": __version__, "inferred": inferred,
                                        "files": dict(sorted(files.items()))})


@dataclass(frozen=True)
class Record:
    files: dict[str, str]
    inferred: bool


def read_record(folder: Path) -> Record:
    """The record `init` wrote in `folder`; UpdateError naming the file and the fix if the
    folder is not a rendered project or the record is missing or damaged."""
    path = folder / RECORD
    fix = (f"a project `mlops-kit init` wrote has it: restore it from git (`git checkout -- "
           f"{RECORD}`), or re-render into an empty folder and move your files over")
    if not (folder / ANSWERS).is_file():
        raise UpdateError(f"{folder / ANSWERS}: not found; {folder} is not a project "
                          "`mlops-kit init` rendered")
    if not path.is_file():
        raise UpdateError(f"{path}: not found; {fix}")
    try:
        raw = read_json_state(path, fix)
    except StateFileError as exc:
        raise UpdateError(str(exc)) from None
    files = raw.get("files") if isinstance(raw, dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise UpdateError(f"{path}: `files` is not a mapping of path to sha256; {fix}")
    return Record({str(k): v for k, v in files.items()}, bool(raw.get("inferred", False)))


def apply(project: Path, fresh: Path) -> Update:
    """Bring `project` to the render in `fresh` by the rules of the module docstring."""
    record, new = read_record(project), tree(fresh)
    recorded = record.files
    done = Update()
    for rel, new_digest in new.items():
        mine = project / rel
        if rel in OWNED and mine.exists():
            continue
        if not mine.exists():
            (done.kept_deleted if rel in recorded else done.added).append(rel)
            if rel not in recorded:
                _copy(fresh / rel, mine)
            continue
        current = digest(mine)
        if current == new_digest:
            continue
        if current == recorded.get(rel):
            _copy(fresh / rel, mine)
            done.updated.append(rel)
        elif recorded.get(rel) != new_digest:  # both changed it (or it was never recorded)
            _copy(fresh / rel, mine.with_name(mine.name + ".new"))
            done.conflicts.append(rel)
    for rel in sorted(set(recorded) - set(new)):
        mine = project / rel
        if mine.is_file() and digest(mine) == recorded[rel]:
            mine.unlink()
            done.removed.append(rel)
        elif mine.is_file():
            done.kept_changed.append(rel)
    write_record(project, new, inferred=record.inferred)
    return done


def _copy(source: Path, path: Path) -> None:
    _replace(path, source.read_bytes(), source.stat().st_mode & 0o777)


def _replace(path: Path, data: bytes, mode: int = 0o644) -> None:
    write_bytes_atomic(path, data, mode)
