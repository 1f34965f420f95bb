"""The AWS CDK app of mlops-kit: one Stage per AWS environment of `mlops.yaml`."""
