"""The CDK app: `cdk synth`, `cdk deploy -c env=NAME '<project>-NAME/*'` (see docs/aws.md).

Every stack sits in a Stage, so commands select them with the Stage's path pattern (the CLI's
`--all` takes top-level stacks only); `'<project>-cicd/*'` is the delivery stack.

Context: `env` (one AWS environment of the config; all of them if unset), `config` (the config
file, default mlops.yaml) and `releases` (a JSON file mapping each model to the approved package
to serve, written by `python -m mlops_kit.adapters.aws.release`; no endpoint without one).
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlops_cdk.app import build  # noqa: E402

from mlops_kit.config import ConfigError  # noqa: E402

app = cdk.App()
try:
    build(app, ROOT)
except (ConfigError, ValueError) as exc:
    sys.exit(f"error: {exc}")
app.synth()
