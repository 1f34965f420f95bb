"""`pulumi up -s <stack>`: the stack file names the mlops.yaml environment; this only wires."""

from pathlib import Path

from mlops_pulumi.config import from_pulumi
from mlops_pulumi.program import deploy

deploy(from_pulumi(Path(__file__).resolve().parents[1]))
