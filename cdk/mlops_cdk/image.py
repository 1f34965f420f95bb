"""The project image as a Docker asset: only what the image needs is hashed and staged."""

from __future__ import annotations

import os
from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from mlops_kit.config import LoadedConfig
from mlops_kit.image import build_args, context_files, dockerfile, in_context
from mlops_kit.steps.register import git_commit

# Docker ignore syntax: everything out, then the project's files back in (mlops_kit.image).
NOISE = ["**/__pycache__", "**/*.pyc"]


def project_image(scope: Construct, id_: str, root: Path,
                  loaded: LoadedConfig) -> ecr_assets.DockerImageAsset:
    """The image built from `image.dockerfile` with the project folder `root` as context and
    the config baked in at `image.config_path`."""
    return ecr_assets.DockerImageAsset(
        scope, id_, directory=str(root), file=in_context(loaded, root, dockerfile(loaded)),
        exclude=["*", *(f"!{f}" for f in context_files(loaded, root)), *NOISE],
        ignore_mode=IgnoreMode.DOCKER,
        build_args={**build_args(loaded, root), "GIT_COMMIT": source_commit(root)},
        platform=ecr_assets.Platform.LINUX_AMD64,
    )


def source_commit(root: Path) -> str:
    """The commit being deployed, baked into the image for lineage: CodeBuild's resolved source
    version in the delivery pipeline (its source has no `.git`), else the checkout's HEAD."""
    commit = os.environ.get("CODEBUILD_RESOLVED_SOURCE_VERSION") or git_commit(root)["commit"]
    return str(commit or "")
