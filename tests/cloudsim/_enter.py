"""Run inside `unshare --user --map-root-user --mount`: build a root with the job's mounts, then
chroot into it and exec the job. Usage: `python _enter.py SPEC.json` where SPEC holds `newroot`,
`mounts` (container path -> host path), `cwd`, `argv` and `env`.

The new root sees the host's whole file system (every top-level entry bind-mounted back), plus
the mounts at their container paths: what a cloud's container sees at /opt/ml, /gcs or
/mnt/azureml, while the interpreter and the installed kit come from this machine.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path

MS_BIND, MS_REC = 4096, 16384
_libc = ctypes.CDLL(None, use_errno=True)


def bind(source: str, target: str) -> None:
    if _libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bind mount {source} -> {target}: {os.strerror(err)}")


def mirror(host: Path, new: Path, keep_open: set[Path]) -> None:
    """Make `new` show `host`'s entries; folders on the way to a mount point are opened up
    (their own entries mirrored one by one) instead of bound whole."""
    new.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(host):
        src, dst = host / entry.name, new / entry.name
        if entry.is_symlink():
            dst.symlink_to(src.readlink())
        elif src in keep_open:
            mirror(src, dst, keep_open)
        elif entry.is_dir():
            dst.mkdir()
            bind(str(src), str(dst))
        else:
            dst.touch()
            bind(str(src), str(dst))


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    newroot = Path(spec["newroot"])
    mounts = {Path(k): Path(v) for k, v in spec["mounts"].items()}
    keep_open = {p for target in mounts for p in target.parents if p != Path("/") and p.exists()}
    mirror(Path("/"), newroot, keep_open)
    for target, source in sorted(mounts.items()):
        inside = newroot / target.relative_to("/")
        inside.mkdir(parents=True, exist_ok=True)
        bind(str(source), str(inside))
    os.chroot(newroot)
    os.chdir(spec["cwd"])
    os.execvpe(spec["argv"][0], spec["argv"], spec["env"])


if __name__ == "__main__":
    main()
