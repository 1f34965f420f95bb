"""The project image's build inputs, one rule for every cloud: the context is the project
folder, the Dockerfile is config `image.dockerfile` (relative to the config's folder), and the
build arguments place the config (and a project DAG file, if the config names one) in it."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from mlops_kit.config import ConfigError, LoadedConfig
from mlops_kit.pipeline import pipeline_file

LOCKS = ("requirements*.txt", "*.lock")


def _lexical(path: Path) -> Path:
    """`path` made absolute and normalized, symbolic links not followed."""
    return Path(os.path.normpath(path.absolute()))


def dockerfile(loaded: LoadedConfig) -> Path:
    """The Dockerfile the config names (it need not exist; `dockerfile_problem` says so), its
    symbolic links kept: the context holds it by this path."""
    return _lexical(loaded.root / Path(loaded.config.image.dockerfile).expanduser())


def dockerfile_problem(loaded: LoadedConfig) -> str | None:
    """Why the image cannot be built from this config, or None."""
    path = dockerfile(loaded)
    if path.is_file():
        return None
    return (f"image.dockerfile: {path} not found; write the project's Dockerfile there or set "
            "image.dockerfile to it (relative to the config's folder)")


def in_context(loaded: LoadedConfig, root: Path, path: Path) -> str:
    """`path` relative to the build context `root`; ConfigError if it lies outside."""
    for inside, folder in ((_lexical(path), _lexical(root)),
                           (path.resolve(), root.resolve())):
        if inside.is_relative_to(folder):
            return inside.relative_to(folder).as_posix()
    raise ConfigError(f"{loaded.path}: {path} must sit inside the project folder {root} "
                      "(the image's build context)")


def build_args(loaded: LoadedConfig, root: Path) -> dict[str, str]:
    """CONFIG and CONFIG_PATH; PIPELINE and PIPELINE_PATH too if the config names a DAG file
    (where the image's config, at `image.config_path`, finds it)."""
    config_path = loaded.config.image.config_path
    args = {"CONFIG": in_context(loaded, root, loaded.path), "CONFIG_PATH": config_path}
    if loaded.config.pipeline is not None:
        image_dag = posixpath.join(posixpath.dirname(config_path), loaded.config.pipeline)
        args |= {"PIPELINE": in_context(loaded, root, pipeline_file(loaded)),
                 "PIPELINE_PATH": posixpath.normpath(image_dag)}
    return args


def context_files(loaded: LoadedConfig, root: Path) -> list[str]:
    """What of the project folder the image needs: its package (pyproject, README, src), the
    config, the Dockerfile, a project DAG file and lock files, those that exist."""
    names = [p.name for pattern in ("pyproject.toml", "README*", "src", *LOCKS)
             for p in sorted(root.glob(pattern))]
    args = build_args(loaded, root)
    files = [args["CONFIG"], in_context(loaded, root, dockerfile(loaded))]
    return list(dict.fromkeys([*names, *files, *([args["PIPELINE"]] if "PIPELINE" in args
                                                 else [])]))


def image_build_flags(loaded: LoadedConfig) -> list[str]:
    """`--file` and the `--build-arg`s of a `docker build` (or `az acr build`) run in the
    config's folder, the project folder of a CI checkout: what the Azure and GCP CI emit. A
    Dockerfile outside that folder is named by its absolute path (docker reads it from there)."""
    path = dockerfile(loaded)
    inside = path.is_relative_to(_lexical(loaded.root))
    flags = ["--file", in_context(loaded, loaded.root, path) if inside else str(path)]
    for name, value in build_args(loaded, loaded.root).items():
        flags += ["--build-arg", f"{name}={value}"]
    return flags
