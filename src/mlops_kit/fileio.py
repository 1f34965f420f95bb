"""Small file helpers shared by every layer: atomic writes, locks, walking, linking, and the
JSON Lines logs each serving worker appends to."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlops_kit.errors import StateFileError


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` through a temp file and `os.replace` (all or nothing)."""
    write_bytes_atomic(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


def write_bytes_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` (permissions `mode`, else the temp file's 0600) through a temp
    file beside it, fsync and `os.replace`: all or nothing, even when killed mid-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def read_json_state(path: Path, fix: str) -> Any:
    """A JSON state file's data; StateFileError naming `path`, what is wrong and `fix` when it
    cannot be read, is empty, is not UTF-8 or is not JSON (the caller checks its shape). The
    one reader of the registry, endpoint and catalog state files, so they say it one way."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StateFileError(path, f"cannot be read ({exc.strerror or exc}; check its "
                             "permissions and the disk)", fix) from exc
    if not raw.strip():
        raise StateFileError(path, f"is empty ({len(raw)} bytes)", fix)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise StateFileError(path, f"is not UTF-8 text (byte {exc.start})", fix) from exc
    except json.JSONDecodeError as exc:
        raise StateFileError(path, f"is not valid JSON (line {exc.lineno} column {exc.colno}: "
                             f"{exc.msg}; truncated or garbled)", fix) from exc


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries to disk so a rename survives a power cut (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive `fcntl` lock on `path` (created) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# A temp sibling a writer makes on its way to `<name>`: `.<name>.<pid>.<random>.<kind>`, kind
# tmp (a file being written), stage (a folder being filled) or old (a folder being replaced).
# The pid lets a later process tell a dead writer's leftovers from a live writer's work.
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.(?P<kind>tmp|stage|old)"
                       r"(?:-journal|-wal|-shm)?$")


def temp_sibling(path: Path, kind: str) -> Path:
    """A fresh temp sibling of `path` named by `TEMP_NAME` (not created)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.{kind}")


def temp_file(path: Path) -> tuple[int, Path]:
    """A new temp sibling of `path` named by `TEMP_NAME` (kind tmp), created: its fd and path."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                               suffix=".tmp")
    return fd, Path(tmp)


def stale_temp(path: Path) -> re.Match[str] | None:
    """The `TEMP_NAME` match of `path` if the process that made it is gone, else None."""
    match = TEMP_NAME.match(path.name)
    return match if match and not pid_alive(int(match["pid"])) else None


@contextmanager
def work_dir(state: Path, label: str) -> Iterator[Path]:
    """A scratch folder `<state>/tmp/<pid>-<label>-<random>`, removed after the block; one a
    killed process leaves is found by its pid and removed by the next run."""
    folder = state / "tmp" / f"{os.getpid()}-{label}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def scratch_dir(state: Path | None, label: str) -> Iterator[Path]:
    """`work_dir(state, label)`; with no state folder (a cloud job's container, which is
    thrown away after the job) a folder in the OS temp dir. Removed after the block."""
    if state is not None:
        with work_dir(state, label) as folder:
            yield folder
        return
    with tempfile.TemporaryDirectory(prefix=f"mlops-{label}-") as tmp:
        yield Path(tmp)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host (a zombie counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def walk_files(folder: Path) -> dict[str, Path]:
    """Relative POSIX path -> absolute path of every file under `folder` (empty if missing)."""
    if not folder.is_dir():
        return {}
    out: dict[str, Path] = {}
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            full = Path(dirpath) / name
            out[full.relative_to(folder).as_posix()] = full
    return dict(sorted(out.items()))


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def digest_dir(folder: Path, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Per-file sha256 and size, and one digest over them all: a folder's content hash, the
    same wherever the folder was written (a local run, a cloud job, an unpacked tarball).
    Files whose relative path is in `exclude` are left out."""
    skip = frozenset(exclude)
    files: dict[str, dict[str, Any]] = {}
    total = hashlib.sha256()
    for rel, path in walk_files(folder).items():
        if rel in skip:
            continue
        sha = sha256_file(path)
        files[rel] = {"sha256": sha, "bytes": path.stat().st_size}
        total.update(f"{rel}:{sha}\n".encode())
    return {"digest": total.hexdigest(), "files": files}


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link `src` to `dst`, or copy it (with metadata) where links are not possible."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def local_path(uri: str) -> Path:
    """The path a local URI names: a plain path or a `file://` URI."""
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    if "://" in uri:
        raise ValueError(f"not a local path or file:// URI: {uri!r}")
    return Path(uri)


def worker_file(suffix: str = ".jsonl") -> str:
    """A file name no other process writes: host, pid and a random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"


def append_lines(path: Path, lines: list[str]) -> None:
    """Append lines to a file only this process writes (no lock needed): all of them or, on
    an error such as a full disk, none (a partial append is cut off again)."""
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = memoryview(("\n".join(lines) + "\n").encode("utf-8"))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def read_json_lines(paths: Iterable[Path]) -> Iterator[Any]:
    """The records of JSON Lines files; a last line still being written is skipped."""
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue
