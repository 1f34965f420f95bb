"""What every emulated runner shares: a checkout of the repository, a container (a Cloud Build
step, a GitHub job's VM) whose PATH holds only its image's programs, and the calls recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tests.ci.images import APT, Image
from tests.ci.shim import ROOT, write_shim


class RunnerError(Exception):
    """The runner would stop here; the message names the step, its image and why."""


def checkout(folder: Path, repository: Path = ROOT) -> Path:
    """A copy of `repository` as a checkout of it has it: this work tree's tracked files and
    new ones git does not ignore (no .git, no .venv, no node_modules), or every file of a
    folder that is no git work tree (a generated project)."""
    if repository != ROOT:
        shutil.copytree(repository, folder, dirs_exist_ok=True)
        return folder
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    return folder


def start(image: Image, folder: Path, run: Path) -> Path:
    """A fresh container of `image` in `folder`; the folder of its programs (its PATH)."""
    folder.mkdir(parents=True)
    run.mkdir(parents=True, exist_ok=True)
    (folder / "image.json").write_text(json.dumps({"name": image.name, "files": image.files,
                                                   "env": image.env}))
    (folder / "apt.json").write_text(json.dumps(APT))
    bin_dir = folder / "bin"
    for name, tool in image.tools.items():
        write_shim(bin_dir, name, asdict(tool), folder, run)
    return bin_dir


def calls(run: Path) -> list[dict[str, Any]]:
    """The calls the shims recorded in `run`, in order."""
    log = run / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def execute(argv: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    """Run one step's process; RunnerError with its output's tail when it fails."""
    if not cwd.is_dir():
        raise RunnerError(f"{what}: working folder {cwd} does not exist")
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-12:])
        raise RunnerError(f"{what} exited {done.returncode}:\n{tail}")
    return done.stdout
