"""Cloud Build, emulated: each step of a build runs the way the build VM starts it.

A step is a fresh container of its `name` image: `entrypoint` + `args` (or the image's own
entrypoint + `args`), in /workspace (a copy of the repository, shared by all steps; `dir` is
relative to it), with the step's `env`. Substitutions are applied first as Cloud Build does:
`$$` is a literal `$`, `$KEY` / `${KEY}` must be a substitution the build has (Cloud Build
refuses others), a `$` before anything else stays. An image is one of tests/ci/images.py's
rows, or one an earlier step built (the project image). Steps run in order (no `waitFor`).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from tests.ci.container import RunnerError, calls, checkout, execute, start
from tests.ci.images import IMAGES, Image, project_image

STEP_KEYS = {"id", "name", "entrypoint", "args", "env", "dir"}
SUBSTITUTION = re.compile(r"\$\$|\$\{([A-Z_][A-Z0-9_]*)\}|\$([A-Z_][A-Z0-9_]*)")


def trigger_substitutions(project: str, branch: str, repo: str, commit: str) -> dict[str, str]:
    """The built-in substitutions of a build a GitHub push trigger starts."""
    return {"PROJECT_ID": project, "BUILD_ID": "b0d1e5c8-0000-4000-8000-000000000001",
            "PROJECT_NUMBER": "123456789012", "LOCATION": "global", "TRIGGER_NAME": "push",
            "COMMIT_SHA": commit, "REVISION_ID": commit, "SHORT_SHA": commit[:7],
            "REPO_NAME": repo.split("/")[-1], "REPO_FULL_NAME": repo, "BRANCH_NAME": branch,
            "TAG_NAME": "", "REF_NAME": branch, "TRIGGER_BUILD_CONFIG_PATH": "",
            "SERVICE_ACCOUNT_EMAIL": f"build@{project}.iam.gserviceaccount.com",
            "SERVICE_ACCOUNT": f"projects/{project}/serviceAccounts/build@{project}"
                               ".iam.gserviceaccount.com"}


def substitute(value: Any, values: dict[str, str]) -> Any:
    """`value` (a string, or lists of them) with Cloud Build's substitutions applied."""
    if isinstance(value, list):
        return [substitute(v, values) for v in value]

    def one(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        key = match[1] or match[2]
        if key not in values:
            raise RunnerError(f"invalid build: key in the template {key!r} is not a valid "
                              "built-in substitution (write $$ for a literal $)")
        return values[key]

    return SUBSTITUTION.sub(one, value)


def run_build(steps: list[dict[str, Any]], folder: Path, substitutions: dict[str, str],
              objects: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Run the build's steps in `folder`; the calls the cloud programs received.
    `objects` are the Cloud Storage objects that exist before the build (gs:// uri -> text)."""
    workspace, run = checkout(_made(folder / "workspace")), folder / "run"
    for uri, text in (objects or {}).items():
        path = run / "gcs" / uri.removeprefix("gs://")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for number, raw in enumerate(steps):
        what = f"step {raw.get('id', number)!r}"
        if set(raw) - STEP_KEYS:
            raise RunnerError(f"{what}: fields {sorted(set(raw) - STEP_KEYS)} are not emulated")
        step = {k: substitute(v, substitutions) for k, v in raw.items()}
        image = _image(step["name"], run)
        argv = ([step["entrypoint"], *step.get("args", [])] if step.get("entrypoint")
                else [*image.entrypoint, *step.get("args", [])])
        bin_dir = start(image, folder / f"step-{number}", run)
        program = shutil.which(argv[0], path=str(bin_dir)) if argv else None
        if program is None:
            raise RunnerError(f"{what}: {argv[:1]} is not a program of image {image.name} "
                              f"({image.source})")
        env = {**image.env, **dict(e.split("=", 1) for e in step.get("env", [])),
               "PATH": str(bin_dir), "HOME": str(_made(folder / f"step-{number}" / "home"))}
        execute([program, *argv[1:]], workspace / step.get("dir", ""), env,
                f"{what} in {image.name}")
    return calls(run)


def _image(name: str, run: Path) -> Image:
    if name in IMAGES:
        return IMAGES[name]
    built_file = run / "docker.json"
    built = json.loads(built_file.read_text()) if built_file.exists() else {}
    if name in built:
        return project_image(name, built[name])
    raise RunnerError(f"image {name}: neither built by an earlier step nor a row of "
                      "tests/ci/images.py")


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
