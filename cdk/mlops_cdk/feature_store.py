"""The SageMaker Feature Group of the declared features: online and offline store, KMS."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlops_cdk.settings import EnvSettings
from mlops_kit.adapters.aws import naming
from mlops_kit.steps.features import ENTITY, TIME, FeatureSet


def feature_group_name(settings: EnvSettings) -> str:
    """Feature group names take letters, digits and hyphens (at most 64)."""
    return naming.feature_group(settings.project, settings.name, settings.config.features.group)


class FeatureStore(Construct):
    """One feature group: record id = the entity, event time = the event timestamp."""

    def __init__(self, scope: Construct, id_: str, *, settings: EnvSettings, key: kms.IKey,
                 offline_bucket: s3.IBucket) -> None:
        super().__init__(scope, id_)
        config = settings.config
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal(
            "sagemaker.amazonaws.com"), description="Feature Store writes the offline store")
        offline_bucket.grant_read_write(self.role, "feature-store/*")
        key.grant_encrypt_decrypt(self.role)
        columns = FeatureSet(tuple(config.features.declared), config.table).columns
        definitions = [{"featureName": ENTITY, "featureType": "String"},
                       {"featureName": TIME, "featureType": "String"}]
        definitions += [{"featureName": c, "featureType": "Fractional"} for c in columns]
        self.name = feature_group_name(settings)
        self.group = sagemaker.CfnFeatureGroup(
            self, "Group", feature_group_name=self.name,
            record_identifier_feature_name=ENTITY, event_time_feature_name=TIME,
            feature_definitions=definitions,
            description=f"{settings.project}: {len(columns)} features of {config.table.table}",
            # These two properties are untyped JSON: CloudFormation's names, as written.
            online_store_config={"EnableOnlineStore": True,
                                 "SecurityConfig": {"KmsKeyId": key.key_arn}},
            offline_store_config={"S3StorageConfig": {
                "S3Uri": f"s3://{offline_bucket.bucket_name}/feature-store",
                "KmsKeyId": key.key_arn}, "DisableGlueTableCreation": False},
            role_arn=self.role.role_arn,
        )
        self.group.node.add_dependency(self.role)
        self.key = key
        # names are lower case (the config's patterns), as in the ARN SageMaker gives the group
        self.arn = Stack.of(self).format_arn(service="sagemaker", resource="feature-group",
                                             resource_name=self.name)

    def grant_put_record(self, role: iam.IRole) -> None:
        """PutRecord into this group only, and Decrypt on its online store's key (every
        Feature Store data-plane call needs it)."""
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="OnlineFeatures", actions=["sagemaker:PutRecord"], resources=[self.arn]))
        self.key.grant_decrypt(role)
