"""A file-backed model registry with SageMaker Model Registry semantics.

Layout under `root`::

    <model>/registry.json        the index, replaced atomically (temp file, fsync, rename)
    <model>/.lock                fcntl lock serialising writers of that model
    <model>/<version>/           the model files plus version.json (the version's full record)

A version folder is staged as `.tmp-*`, renamed into place, then named in the index. Each
version.json holds all the index knows of its version (number, status, metrics, params,
lineage, digest and per-file sha256), so `repair` can rebuild a lost or corrupt index. The
registry deletes only temp files and folders its own writers stage (`.tmp-*`,
`.<name>.*.tmp`); a version folder is never deleted, even one the index does not name.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from mlops_kit.errors import StateFileError
from mlops_kit.fileio import (
    file_lock,
    fsync_dir,
    read_json_state,
    walk_files,
    write_json_atomic,
)
from mlops_kit.registry.base import (
    STATUSES,
    CorruptVersionError,
    Mismatch,
    ModelVersion,
    RegistryError,
    Status,
    digest_mismatch,
    model_digest,
)

INDEX = "registry.json"
VERSION_FILE = "version.json"
INDEX_FORMAT = 2
STAGE_PREFIX = ".tmp-"
REPAIR = "Rebuild it from the version folders' version.json: mlops-kit registry repair"
REWRITE = "mlops-kit registry repair rewrites it from the index"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TEMP_FILE = re.compile(rf"^\.({re.escape(INDEX)}|{re.escape(VERSION_FILE)})\..+\.tmp$")


def check_status(status: str) -> Status:
    """`status` if it is a registry status; RegistryError listing the allowed ones otherwise."""
    if status not in STATUSES:
        raise RegistryError(f"invalid status {status!r}; allowed: {', '.join(STATUSES)}")
    return cast(Status, status)


def utc_now() -> str:
    """The current time as an ISO 8601 UTC timestamp."""
    return datetime.now(UTC).isoformat()


@dataclass
class RepairReport:
    """What `LocalRegistry.repair` found and did."""

    index: Path
    index_problem: str | None = None  # why the old index could not be used (None: it could)
    versions: list[int] = field(default_factory=list)  # in the new index
    restored: list[int] = field(default_factory=list)  # version.json rewritten from the index
    digested: list[int] = field(default_factory=list)  # digest first recorded, files as found
    problems: list[str] = field(default_factory=list)  # what needs a person, one line each


class LocalRegistry:
    """Model versions in folders under `root`; safe for concurrent writers on one host."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()

    def register(self, model: str, model_dir: Path, *, status: Status,
                 metrics: dict[str, float], params: dict[str, Any],
                 lineage: dict[str, Any], description: str = "") -> ModelVersion:
        """Copy `model_dir`'s files into a new version of `model` and return it."""
        check_status(status)
        model_dir = Path(model_dir)
        files = _model_files(model_dir)
        digest = _source_digest(model_dir, lineage)
        folder = self._folder(model)
        with file_lock(folder / ".lock"):
            index = self._read_index(model)
            _sweep(folder)
            taken = {int(v["version"]) for v in index} | set(_version_folders(folder))
            number = max(taken, default=0) + 1
            version = ModelVersion(
                model=model, version=number, status=status,
                artifact_uri=(folder / str(number)).as_uri(),
                metrics={k: float(v) for k, v in metrics.items()}, params=dict(params),
                lineage=dict(lineage), created=utc_now(), description=description,
                digest=digest["digest"], files=digest["files"],
            )
            record = json.loads(json.dumps(version.to_dict(), default=str))
            _stage_version(folder, number, files, record)
            try:
                _write_index(folder, model, [*index, record])
            except BaseException:
                shutil.rmtree(folder / str(number), ignore_errors=True)  # staged by this call
                raise
        return _from_record(record, folder)

    def versions(self, model: str) -> list[ModelVersion]:
        """All versions of `model`, oldest first (empty if the model is unknown)."""
        folder = self._folder(model)
        return [_from_record(r, folder) for r in self._read_index(model)]

    def get(self, model: str, version: int) -> ModelVersion:
        """One version; RegistryError if the model or the version does not exist."""
        record = self._record(self._read_index(model), model, version)
        return _from_record(record, self._folder(model))

    def set_status(self, model: str, version: int, status: Status) -> ModelVersion:
        """Set a version's approval status (version.json, then the index) and return it."""
        check_status(status)
        folder = self._folder(model)
        with file_lock(folder / ".lock"):
            index = self._read_index(model)
            record = self._record(index, model, version)
            record["status"] = status
            if (folder / str(version)).is_dir():
                write_json_atomic(folder / str(version) / VERSION_FILE, record)
            _write_index(folder, model, index)
        return _from_record(record, folder)

    def download(self, model: str, version: int, dest: Path) -> Path:
        """Copy the version's model files into `dest` (created) and return it."""
        self.get(model, version)
        source = self._folder(model) / str(version)
        if not source.is_dir():
            raise CorruptVersionError(
                f"{source}: the version folder is missing: {model} version {version} cannot "
                f"be loaded. Restore the folder from a backup, or reject the version "
                f"(mlops-kit registry reject {version})")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for rel, path in walk_files(source).items():
            if rel == VERSION_FILE or _TEMP_FILE.match(Path(rel).name):
                continue
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
        return dest

    def verify(self, version: ModelVersion) -> Mismatch | None:
        """How the registry's copy of `version` differs from its digest (None: it matches)."""
        source = self.path(version)
        if not source.is_dir():
            return Mismatch(None, "folder missing")
        return digest_mismatch(source, version)

    def path(self, version: ModelVersion) -> Path:
        """The folder that holds `version`'s files."""
        return self._folder(version.model) / str(version.version)

    def unindexed(self, model: str) -> list[int]:
        """Version folders the index does not name (a writer killed before its commit)."""
        named = {v.version for v in self.versions(model)}
        return sorted(set(_version_folders(self._folder(model))) - named)

    def damaged_records(self, model: str) -> list[StateFileError]:
        """Each unusable version.json: the copy a lost index would be rebuilt from (`repair`
        rewrites it from the index)."""
        out = []
        for record in self._read_index(model):
            number = int(record["version"])
            vfile = self._folder(model) / str(number) / VERSION_FILE
            try:
                problem = _record_problem(read_json_state(vfile, REWRITE), model, number)
                if problem:
                    raise StateFileError(vfile, problem, REWRITE)
            except StateFileError as exc:
                out.append(exc)
        return out

    def repair(self, model: str) -> RepairReport:
        """Rebuild `model`'s index from its version folders (each version.json; one that is
        corrupt is rewritten from the old index where it can be). Deletes no version."""
        folder = self._folder(model)
        report = RepairReport(folder / INDEX)
        with file_lock(folder / ".lock"):
            try:
                old = {int(r["version"]): r for r in self._read_index(model)}
            except StateFileError as exc:
                old, report.index_problem = {}, exc.problem
            _sweep(folder)
            found = _version_folders(folder)
            records = {n: r for n, path in found.items()
                       if (r := _rebuild_record(model, n, path, old.get(n), report)) is not None}
            for n, record in old.items():
                if n not in found:
                    records[n] = record
                    report.problems.append(
                        f"{folder / str(n)}: the version folder is missing; version {n} stays "
                        f"in the index and cannot be loaded: restore it or reject the version")
            if records or (folder / INDEX).exists():
                _write_index(folder, model, [records[n] for n in sorted(records)])
            report.versions = sorted(records)
        return report

    def _folder(self, model: str) -> Path:
        if not _MODEL_NAME.match(model):
            raise RegistryError(
                f"invalid model name {model!r}: use letters, digits, '.', '_' and '-' "
                "(at most 128 characters, starting with a letter or digit)"
            )
        return self.root / model

    def _read_index(self, model: str) -> list[dict[str, Any]]:
        """The index's records; StateFileError if it is unusable, or missing while version
        folders exist (an empty list would let a writer reuse their numbers)."""
        folder = self._folder(model)
        path = folder / INDEX
        if not path.exists():
            found = _version_folders(folder)
            if found:
                numbers = ", ".join(map(str, sorted(found)))
                raise StateFileError(path, f"is missing, but version folders {numbers} exist "
                                     f"in {folder}", REPAIR)
            return []
        data = read_json_state(path, REPAIR)
        problem = _index_problem(data, model)
        if problem:
            raise StateFileError(path, problem, REPAIR)
        return list(data["versions"])

    def _record(self, index: list[dict[str, Any]], model: str, version: int) -> dict[str, Any]:
        if not index:
            known = sorted(p.parent.name for p in self.root.glob(f"*/{INDEX}"))
            raise RegistryError(
                f"model {model!r} is not registered in {self.root} "
                f"(registered models: {', '.join(known) or 'none'})"
            )
        for record in index:
            if record["version"] == version:
                return record
        numbers = ", ".join(str(r["version"]) for r in index)
        raise RegistryError(f"model {model!r} has no version {version} (versions: {numbers})")


def _model_files(model_dir: Path) -> dict[str, Path]:
    """The files to register; RegistryError if there are none or one clashes with version.json."""
    if not model_dir.is_dir():
        raise RegistryError(f"model folder {model_dir} does not exist or is not a folder")
    files = walk_files(model_dir)
    if not files:
        raise RegistryError(f"model folder {model_dir} holds no files")
    if VERSION_FILE in files:
        raise RegistryError(f"{model_dir}/{VERSION_FILE}: that name is reserved by the registry")
    return files


def _source_digest(model_dir: Path, lineage: dict[str, Any]) -> dict[str, Any]:
    """The model folder's digest; RegistryError if the lineage's `model_digest` disagrees
    (the files changed after it was computed)."""
    digest = model_digest(model_dir)
    claimed = lineage.get("model_digest")
    if claimed and claimed != digest["digest"]:
        raise RegistryError(f"{model_dir}: its files changed after model_digest {claimed[:12]} "
                            f"was computed (now {digest['digest'][:12]}): register it again")
    return digest


def _stage_version(folder: Path, number: int, files: dict[str, Path],
                   record: dict[str, Any]) -> None:
    """Write the version folder under a temp name, check its digest, then rename it to
    `<folder>/<number>`."""
    stage = folder / f"{STAGE_PREFIX}{uuid.uuid4().hex}"
    try:
        stage.mkdir(parents=True)
        for rel, path in files.items():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, stage / rel)
        if model_digest(stage)["digest"] != record["digest"]:
            raise RegistryError(f"the copy of the model in {stage} does not match its digest "
                                "(a file changed while it was copied): register it again")
        write_json_atomic(stage / VERSION_FILE, record)
        stage.rename(folder / str(number))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    fsync_dir(folder)


def _write_index(folder: Path, model: str, records: list[dict[str, Any]]) -> None:
    write_json_atomic(folder / INDEX, {"model": model, "format": INDEX_FORMAT,
                                       "versions": records})


def _version_folders(folder: Path) -> dict[int, Path]:
    """Version number -> folder of every `<folder>/<digits>/`."""
    if not folder.is_dir():
        return {}
    found = {int(c.name): c for c in folder.iterdir() if c.name.isdigit() and c.is_dir()}
    return dict(sorted(found.items()))


def _sweep(folder: Path) -> None:
    """Remove only what this registry's writers stage: `.tmp-*` folders, and the temp files
    of atomic writes (`.registry.json.*.tmp`, `.version.json.*.tmp`) a killed writer left."""
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.is_dir() and child.name.startswith(STAGE_PREFIX):
            shutil.rmtree(child, ignore_errors=True)
        elif child.is_file() and _TEMP_FILE.match(child.name):
            child.unlink(missing_ok=True)
    for version in _version_folders(folder).values():
        for child in version.iterdir():
            if child.is_file() and _TEMP_FILE.match(child.name):
                child.unlink(missing_ok=True)


def _rebuild_record(model: str, number: int, path: Path, indexed: dict[str, Any] | None,
                    report: RepairReport) -> dict[str, Any] | None:
    """Version `number`'s record from its version.json (or, if that is unusable, from the old
    index, rewriting the file); None, with a problem reported, when neither can be used."""
    vfile = path / VERSION_FILE
    fix = "Restore it from a backup, or move the folder out of the registry"
    try:
        record = read_json_state(vfile, fix)
        problem = _record_problem(record, model, number)
        if problem:
            raise StateFileError(vfile, problem, fix)
    except StateFileError as exc:
        if indexed is None:
            report.problems.append(f"{exc} (version {number} is left out of the index)")
            return None
        record = dict(indexed)
        report.restored.append(number)
    changed = number in report.restored or record.get("artifact_uri") != path.as_uri()
    record["artifact_uri"] = path.as_uri()
    if not record.get("digest"):
        _record_legacy_digest(record, path, number, report)
        changed = True
    if changed:
        write_json_atomic(vfile, record)
    return record


def _record_legacy_digest(record: dict[str, Any], path: Path, number: int,
                          report: RepairReport) -> None:
    """Give a record from before per-version digests one: the lineage's `model_digest` if it
    has one (a mismatch then shows), else the digest of the files as they are now."""
    got = model_digest(path)
    claimed = (record.get("lineage") or {}).get("model_digest")
    if claimed and claimed != got["digest"]:
        record["digest"], record["files"] = claimed, {}
        return
    record["digest"], record["files"] = got["digest"], got["files"]
    if not claimed:
        report.digested.append(number)


def _index_problem(data: Any, model: str) -> str | None:
    """What is wrong with an index's shape, or None."""
    if not isinstance(data, dict) or not isinstance(data.get("versions"), list):
        return "has the wrong shape (expected an object with a 'versions' list)"
    if data.get("model", model) != model:
        return f"is the index of model {data.get('model')!r}, not {model!r}"
    seen: set[int] = set()
    for i, record in enumerate(data["versions"]):
        problem = _record_problem(record, model, None)
        if problem:
            return f"versions[{i}] {problem}"
        if record["version"] in seen:
            return f"versions[{i}] repeats version {record['version']}"
        seen.add(record["version"])
    return None


_FIELD_TYPES: dict[str, type] = {
    "artifact_uri": str, "metrics": dict, "params": dict, "lineage": dict, "created": str,
    "description": str, "digest": str, "files": dict}


def _record_problem(record: Any, model: str, number: int | None) -> str | None:
    """What is wrong with one version record (index entry or version.json), or None."""
    if not isinstance(record, dict):
        return "is not an object"
    version = record.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"has no valid 'version' (got {version!r})"
    if number is not None and version != number:
        return f"says version {version}, but it is in folder {number}"
    if record.get("model") != model:
        return f"names model {record.get('model')!r}, not {model!r}"
    if record.get("status") not in STATUSES:
        return f"has status {record.get('status')!r} (allowed: {', '.join(STATUSES)})"
    if "artifact_uri" not in record:
        return "has no 'artifact_uri'"
    for name, kind in _FIELD_TYPES.items():
        if name in record and not isinstance(record[name], kind):
            return f"field {name!r} is a {type(record[name]).__name__}, not a {kind.__name__}"
    return None


def _from_record(record: dict[str, Any], folder: Path) -> ModelVersion:
    """A ModelVersion from its JSON record; its artifact URI is where its folder is now under
    `folder` (the model's folder), even if the registry was moved or copied."""
    return ModelVersion(
        model=record["model"], version=int(record["version"]), status=record["status"],
        artifact_uri=(folder / str(record["version"])).as_uri(),
        metrics=dict(record.get("metrics", {})), params=dict(record.get("params", {})),
        lineage=dict(record.get("lineage", {})),
        created=record.get("created", ""), description=record.get("description", ""),
        digest=record.get("digest", ""), files=dict(record.get("files", {})),
    )
