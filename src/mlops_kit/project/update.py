"""`mlops-kit init --update`: re-apply the installed kit's template to a project.

`init` records the digest of every file it wrote in `.mlops-kit-init.json`. An update renders
the template again (the recorded answers, the project's own mlops.yaml for the CI files) and,
file by file, compares the project's copy with the recorded digest: a file the team has not
changed takes the new render; a file both the team and the template changed is kept and the new
render written beside it as `<file>.new` (`.new.N` if the team has a `.new` there); a file the
team deleted stays deleted; symlinks and files in linked folders are the team's. mlops.yaml and
the answers file are the team's: never rewritten (the CHANGELOG's upgrade notes say what to
change in them). Each write is a temp file renamed into place (fileio.write_bytes_atomic) and
the record is written last, so an update cut short is finished by running it again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from mlops_kit import __version__
from mlops_kit.errors import MlopsKitError, StateFileError
from mlops_kit.fileio import read_json_state, write_bytes_atomic, write_json_atomic

RECORD = ".mlops-kit-init.json"
ANSWERS = ".copier-answers.yml"
OWNED = frozenset({"mlops.yaml", ANSWERS})  # the team's from the first render on
LINK = "symlink"  # the digest a symlinked file counts as: the team's, never rewritten


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
    conflicts: dict[str, str] = field(default_factory=dict)  # kept; path -> the new render's
    pending: list[str] = field(default_factory=list)  # `.new` files of earlier conflicts
    kept_deleted: list[str] = field(default_factory=list)
    kept_changed: list[str] = field(default_factory=list)  # dropped by the template, yours


def digest(path: Path) -> str:
    return LINK if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest()


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
    kit_version: str


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
    outside = [k for k in files if not _inside(str(k))]
    if outside:
        raise UpdateError(f"{path}: {outside[0]!r} is not a path inside the project; the record "
                          f"names only files init wrote there, so {fix}")
    version = str(raw.get("kit_version", "0"))
    if _version_key(version) > _version_key(__version__):
        raise UpdateError(f"{path}: written by mlops-kit {version}, newer than this {__version__}; "
                          f"install mlops-kit>={version} (the project's pin) and run it again")
    return Record(dict(files), bool(raw.get("inferred", False)), version)


def _inside(rel: str) -> bool:
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts and "\\" not in rel


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version)[:3])


def apply(project: Path, fresh: Path) -> Update:
    """Bring `project` to the render in `fresh` by the rules of the module docstring."""
    record, new = read_record(project), tree(fresh)
    recorded, done = record.files, Update()
    for rel, new_digest in new.items():
        try:
            _apply_one(project, fresh, rel, new_digest, recorded.get(rel), done)
        except OSError as exc:
            raise UpdateError(f"{project / rel}: cannot be updated ({exc.strerror or exc}); "
                              "move it aside and run `mlops-kit init --update` again") from None
    for rel in sorted(set(recorded) - set(new)):
        mine = project / rel
        if not _resolves_inside(project, mine):
            continue
        if mine.is_file() and digest(mine) == recorded[rel]:
            mine.unlink()
            done.removed.append(rel)
        elif mine.is_file():
            done.kept_changed.append(rel)
    if new != recorded:
        write_record(project, new, inferred=record.inferred)
    return done


def _apply_one(project: Path, fresh: Path, rel: str, new_digest: str, recorded: str | None,
               done: Update) -> None:
    mine = project / rel
    if (rel in OWNED and mine.exists()) or not _resolves_inside(project, mine):
        return
    if not mine.exists() and not mine.is_symlink():
        (done.kept_deleted if recorded else done.added).append(rel)
        if not recorded:
            _copy(fresh / rel, mine)
        return
    current = digest(mine)
    if current == new_digest:
        return
    if current == recorded:
        _copy(fresh / rel, mine, mode=mine.stat().st_mode & 0o777)
        done.updated.append(rel)
    elif recorded != new_digest:  # both changed it (or it was never recorded)
        beside = _free_new(mine, fresh / rel)
        _copy(fresh / rel, beside)
        done.conflicts[rel] = beside.relative_to(project).as_posix()
    elif mine.with_name(mine.name + ".new").exists():
        done.pending.append(rel + ".new")


def _resolves_inside(project: Path, path: Path) -> bool:
    """Whether `path`'s folder is in the project once symlinks are followed (a linked folder
    is the team's: never written through)."""
    return path.parent.resolve().is_relative_to(project.resolve())


def _free_new(mine: Path, render: Path) -> Path:
    """`<file>.new`, or `<file>.new.N` when a `.new` the team may be merging is there."""
    candidate, n = mine.with_name(mine.name + ".new"), 0
    while candidate.exists() or candidate.is_symlink():
        if candidate.is_file() and digest(candidate) == digest(render):
            return candidate
        n += 1
        candidate = mine.with_name(f"{mine.name}.new.{n}")
    return candidate


def _copy(source: Path, path: Path, mode: int | None = None) -> None:
    _replace(path, source.read_bytes(), source.stat().st_mode & 0o777 if mode is None else mode)


def _replace(path: Path, data: bytes, mode: int = 0o644) -> None:
    write_bytes_atomic(path, data, mode)
