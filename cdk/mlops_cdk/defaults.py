"""Secure defaults, kept in one place: every bucket and key of the app is made here."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


def project_key(scope: Construct, id_: str, alias: str) -> kms.Key:
    """A customer-managed key with yearly rotation, kept when the stack is deleted."""
    return kms.Key(scope, id_, alias=alias, enable_key_rotation=True,
                   description=f"mlops-kit data and artifacts ({alias})",
                   removal_policy=RemovalPolicy.RETAIN)


def logs_bucket(scope: Construct, id_: str, name: str, expire_days: int) -> s3.Bucket:
    """The target of server access logs (S3-managed encryption: logging cannot use KMS)."""
    return s3.Bucket(
        scope, id_, bucket_name=name, encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True, versioned=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(expire_days),
                                          noncurrent_version_expiration=Duration.days(1))],
    )


def secure_bucket(scope: Construct, id_: str, *, name: str, key: kms.IKey, logs: s3.IBucket,
                  lifecycle_rules: list[s3.LifecycleRule] | None = None) -> s3.Bucket:
    """KMS-encrypted, versioned, TLS-only, private, access-logged, retained."""
    return s3.Bucket(
        scope, id_, bucket_name=name, encryption=s3.BucketEncryption.KMS, encryption_key=key,
        bucket_key_enabled=True, enforce_ssl=True, versioned=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=logs, server_access_logs_prefix=f"{name}/",
        removal_policy=RemovalPolicy.RETAIN, lifecycle_rules=lifecycle_rules or [],
    )


def grant_volume_encryption(key: kms.IKey, role: iam.IRole) -> None:
    """Encrypt/decrypt, and the grants SageMaker creates for the job's or endpoint's volumes
    (only for AWS services: `kms:GrantIsForAWSResource`)."""
    key.grant_encrypt_decrypt(role)
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["kms:CreateGrant"], resources=[key.key_arn],
        conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}))
