"""The AWS CDK app of mlops-kit: one Stage per AWS environment of `mlops.yaml`."""

from mlops_kit.extras import require_at_entry

require_at_entry("the CDK app (mlops_cdk)", "aws", "aws_cdk", "constructs", "cdk_nag")
