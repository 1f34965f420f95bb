"""A job's container on this machine: the project image's files and environment as
the project's Dockerfile builds them, and the cloud's mounts at their container paths.

There is no Docker engine here, so the image is built by reading the Dockerfile: `COPY` puts
the files where the image would have them, `ARG` and `ENV` give the environment a job starts
with (build arguments as the CI definition passes them). `RUN` lines install the kit and its
dependencies: this machine's virtual environment stands in for them. Each job then runs in a
user and mount namespace (`unshare`) whose root shows the host's file system plus the image's
folders (`/opt/mlops`) and the cloud's data mounts (`/opt/ml`, `/gcs`, `/mnt/azureml`) at the
very paths the cloud uses, so the job's arguments are exactly the definition's.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ENTER = Path(__file__).with_name("_enter.py")
VENV_BIN = Path(sys.executable).parent
_VAR = re.compile(r"\$\{(\w+)(?::([-+])([^${}]*))?\}|\$(\w+)")


class JobFailed(AssertionError):
    """A job exited non-zero; the message carries its command and output."""


@dataclass
class Dockerfile:
    """What a Dockerfile's ARG, ENV, WORKDIR and COPY lines state, build arguments applied:
    the one reading of it here (the harnesses build images from it, the CI emulation checks
    `docker build` against it). Other instructions (FROM, RUN, ...) are passed over."""

    args: dict[str, str]                    # every ARG declared, with its value
    env: dict[str, str]
    workdir: str
    copies: list[tuple[list[str], str]]     # COPY: sources in the context, absolute target

    @classmethod
    def read(cls, path: Path, build_args: dict[str, str] | None = None) -> Dockerfile:
        """Read `path` as `docker build --build-arg` would with `build_args`."""
        plan = cls({}, {}, "/", [])
        given = dict(build_args or {})
        for verb, rest in _instructions(path.read_text()):
            scope = {**plan.args, **plan.env}
            if verb == "ARG":
                name, _, default = rest.partition("=")
                plan.args[name] = given.get(name, _expand(default.strip('"'), scope))
            elif verb == "ENV":
                for pair in shlex.split(rest):
                    key, _, value = pair.partition("=")
                    plan.env[key] = _expand(value, scope)
            elif verb == "WORKDIR":
                plan.workdir = _image_path(plan.workdir, _expand(rest, scope))
            elif verb == "COPY":
                if rest.startswith("--"):
                    raise ValueError(f"{path}: COPY {rest}: options (--from, --chown, ...) "
                                     "are not modelled here; copy from the context plainly")
                *sources, target = (_expand(p, scope) for p in shlex.split(rest))
                plan.copies.append((sources, _image_path(plan.workdir, target)))
        return plan

    def files(self, context: Path) -> list[tuple[str, Path]]:
        """Each COPY source with the image path it lands at: a folder's contents land in the
        target, a file at the target or, for a target ending in `/`, under its own name."""
        return [(target + src.name if target.endswith("/") and not src.is_dir() else target,
                 src)
                for sources, target in self.copies for src in (context / s for s in sources)]


def _image_path(workdir: str, target: str) -> str:
    """`target` as an absolute image path (a relative one is under WORKDIR), keeping a
    trailing `/` (a folder to copy into)."""
    path = posixpath.normpath(posixpath.join(workdir, target))
    return path.rstrip("/") + "/" if target.endswith("/") else path


@dataclass
class Image:
    """The files (`root`, a folder standing for `/`) and environment of a built image."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"

    @classmethod
    def build(cls, dockerfile: Path, context: Path, dest: Path,
              build_args: dict[str, str] | None = None) -> Image:
        """Carry out `dockerfile`'s COPY lines into `dest`; its ENV and WORKDIR."""
        plan = Dockerfile.read(dockerfile, build_args)
        image = cls(dest, dict(plan.env), plan.workdir)
        for target, src in plan.files(context):
            image.copy(src, target)
        return image

    def copy(self, src: Path, target: str) -> None:
        """Put the file or folder `src` at the image path `target` (a folder: its contents)."""
        into = self.path(target)
        if src.is_dir():
            shutil.copytree(src, into, dirs_exist_ok=True)
        else:
            into.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, into)

    def path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def mounts(self) -> dict[str, Path]:
        """The image's own folders under /opt (what COPY wrote there), as mounts."""
        opt = self.root / "opt"
        return {f"/opt/{p.name}": p for p in opt.iterdir()} if opt.is_dir() else {}


def _instructions(text: str) -> list[tuple[str, str]]:
    out = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            verb, _, rest = line.partition(" ")
            out.append((verb.upper(), rest.strip()))
    return out


def _expand(text: str, scope: dict[str, str]) -> str:
    """Docker's variable substitution: `$X`, `${X}`, `${X:-default}`, `${X:+alt}`, nested
    (`${X:-${Y}}`: the innermost first)."""
    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        value = scope.get(name, "")
        if match.group(2) == "-":
            return value or match.group(3)
        if match.group(2) == "+":
            return match.group(3) if value else ""
        return value
    while (done := _VAR.sub(sub, text)) != text and "$" in done:
        text = done
    return done


class Sandbox:
    """Runs jobs in containers; `folder` holds their roots and scratch space."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def run(self, argv: list[str], *, mounts: dict[str, Path], env: dict[str, str],
            cwd: str = "/", timeout: float = 600,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `argv` (its `python` is this venv's) with `mounts` at their container paths and
        exactly `env` (plus PATH and HOME); JobFailed if it exits non-zero and `check`."""
        run_id = uuid.uuid4().hex[:8]
        home = self.folder / "home" / run_id
        home.mkdir(parents=True)
        spec = {
            "newroot": str(self.folder / "roots" / run_id),
            "mounts": {**{k: str(v) for k, v in mounts.items()}, "/home/job": str(home)},
            "cwd": cwd, "argv": [self._program(argv[0]), *argv[1:]],
            "env": {"PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": "/home/job",
                    **env},
        }
        spec_file = self.folder / f"job-{run_id}.json"
        spec_file.write_text(json.dumps(spec))
        done = subprocess.run(
            ["unshare", "--user", "--map-root-user", "--mount", sys.executable, str(ENTER),
             str(spec_file)], capture_output=True, text=True, timeout=timeout,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        if check and done.returncode != 0:
            raise JobFailed(f"job {shlex.join(argv)} exited {done.returncode}\n"
                            f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-8000:]}")
        return done

    @staticmethod
    def _program(name: str) -> str:
        """`python` is the image's interpreter: this venv's, which has the kit installed."""
        return str(VENV_BIN / "python") if name in ("python", "python3") else name


def namespaces_available() -> bool:
    """Whether this machine lets an unprivileged process make user and mount namespaces."""
    try:
        return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
