"""The project image as a Docker asset: only what the image needs is hashed and staged."""

from __future__ import annotations

import os
from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from mlops_kit.steps.register import git_commit

# Docker ignore syntax: everything out, then these back in.
CONTEXT = ["*", "!pyproject.toml", "!README.md", "!src", "!pipelines", "!docker",
           "**/__pycache__", "**/*.pyc"]


def project_image(scope: Construct, id_: str, root: Path, config_file: str,
                  config_path: str) -> ecr_assets.DockerImageAsset:
    """The image built from `docker/Dockerfile` with the config baked in at `config_path`."""
    return ecr_assets.DockerImageAsset(
        scope, id_, directory=str(root), file="docker/Dockerfile",
        exclude=[*CONTEXT, f"!{config_file}"], ignore_mode=IgnoreMode.DOCKER,
        build_args={"CONFIG": config_file, "CONFIG_PATH": config_path,
                    "GIT_COMMIT": source_commit(root)},
        platform=ecr_assets.Platform.LINUX_AMD64,
    )


def source_commit(root: Path) -> str:
    """The commit being deployed, baked into the image for lineage: CodeBuild's resolved source
    version in the delivery pipeline (its source has no `.git`), else the checkout's HEAD."""
    commit = os.environ.get("CODEBUILD_RESOLVED_SOURCE_VERSION") or git_commit(root)["commit"]
    return str(commit or "")
