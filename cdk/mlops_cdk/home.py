"""Reading the home environment's registry from a later environment's account.

Approved versions (model files, training baselines) live in the home environment's artifacts
bucket, encrypted with its key. The home account shares them (`PlatformStack._share_registry`);
a later environment's roles need the matching grants on their side.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from mlops_cdk.settings import EnvSettings
from mlops_kit.adapters.aws import naming


def read_home_registry(role: iam.IRole, settings: EnvSettings, prefix: str = "models/*") -> None:
    """Let `role` read objects under `prefix` of the home artifacts bucket and decrypt them."""
    stack, home = Stack.of(role), settings.config.environments[settings.home]
    bucket = naming.artifacts_bucket(settings.project, settings.home_account, home.region)
    role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[
        f"arn:{stack.partition}:s3:::{bucket}/{prefix}"]))
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["kms:Decrypt"],
        resources=[f"arn:{stack.partition}:kms:{home.region}:{settings.home_account}:key/*"],
        conditions={"ForAnyValue:StringEquals": {
            "kms:ResourceAliases": f"alias/{settings.project}-{settings.home.replace('_', '-')}"}}))
