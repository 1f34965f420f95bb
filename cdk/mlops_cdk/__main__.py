"""The CDK app of the project in the current folder: `cdk synth`, `cdk deploy -c env=NAME
'<project>-NAME/*'` with cdk.json's `"app": "python -m mlops_cdk"` (see docs/aws.md).

Every stack sits in a Stage, so commands select them with the Stage's path pattern (the CLI's
`--all` takes top-level stacks only); `'<project>-cicd/*'` is the delivery stack.

Context: `env` (one AWS environment of the config; all of them if unset), `config` (the config
file, default mlops.yaml, relative to the current folder: the project folder and the image's
build context) and `releases` (a JSON file mapping each model to the approved package to serve,
written by `python -m mlops_kit.adapters.aws.release`; no endpoint without one).
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

from mlops_cdk.app import build
from mlops_kit.config import ConfigError


def main() -> None:
    app = cdk.App()
    try:
        build(app, Path.cwd())
    except (ConfigError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
