"""cdk-nag acknowledgements: each names the rule, exactly what it covers, and why.

AwsSolutions-IAM5 (wildcards in IAM policies) is acknowledged only for the patterns below, and
AwsSolutions-CB3 (privileged CodeBuild) only on the deploy projects; any other finding fails
the tests (tests/test_cdk.py).
"""

from __future__ import annotations

from aws_cdk import Stack, Stage
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

IAM5 = "AwsSolutions-IAM5"
PARTITION = r"(<AWS::Partition>|aws[a-z-]*)"
ACKNOWLEDGED = [
    (r"^Action::s3:(List|GetObject|GetBucket|DeleteObject|Abort|PutObjectLegalHold|"
     r"PutObjectRetention|PutObjectTagging|PutObjectVersionTagging)\*$",
     "The action families of CDK's bucket grants (grantRead/grantReadWrite/grantPut), on the "
     "project's own buckets only."),
    (r"^Action::kms:(ReEncrypt|GenerateDataKey)\*$",
     "The action families of CDK's key grants, on the project's own key only."),
    (r"^Resource::<[A-Za-z0-9]+\.Arn>/(\*|feature-store/\*|models/[a-z0-9-]+/\*|"
     r"capture/[a-z0-9-]+/\*)$",
     "Objects under the project's own buckets (or a prefix of one): object keys are written "
     "at run time (partitions, execution ids, model versions)."),
    (r"^Resource::\*$",
     "ecr:GetAuthorizationToken and cloudwatch:PutMetricData take no resource; PutMetricData "
     "is limited to the project's namespace by an IAM condition."),
    (r"^Resource::arn:{P}:sagemaker:[a-z0-9-]+:\d{12}:(processing|training)-job/\*$",
     "SageMaker Pipelines names the step jobs at run time (pipelines-<execution>-<step>-...)."),
    (r"^Resource::arn:{P}:sagemaker:[a-z0-9-]+:\d{12}:model-package(-group)?/"
     r"[a-z0-9-]+-\*(/\*)?$",
     "The project's model package groups (<project>-<model>) and their versions, created by "
     "the register step."),
    (r"^Resource::arn:{P}:logs:[a-z0-9-]+:\d{12}:log-group:/aws/sagemaker/\*$",
     "SageMaker creates its job log groups under /aws/sagemaker/ at run time."),
    (r"^Resource::arn:{P}:logs:[a-z0-9-]+:\d{12}:log-group:/aws/sagemaker/"
     r"Endpoints/[a-z0-9-]+:\*$",
     "The log streams of the endpoint's own log group (one per instance, named at run time)."),
    (r"^Resource::arn:{P}:sagemaker:[a-z0-9-]+:\d{12}:(endpoint|pipeline)/"
     r"[a-z0-9-]+-\*$",
     "The project's endpoints and training pipelines, one per model (<project>-<model>)."),
    (r"^Resource::arn:{P}:s3:::[a-z0-9.-]+/(models/([a-z0-9-]+/)?|capture/[a-z0-9-]+/)\*$",
     "The files of approved versions in the registry bucket (the model's, or all for the "
     "monitoring baselines), and the endpoint's own capture prefix."),
    (r"^Resource::arn:{P}:kms:[a-z0-9-]+:\d{12}:key/\*$",
     "The home environment's key, whose id this account cannot know: the statement is limited "
     "to the project's key alias by a kms:ResourceAliases condition."),
    (r"^Resource::arn:{P}:iam::\d{12}:role/cdk-[a-z0-9]+-\*-\d{12}-[a-z0-9-]+$",
     "The CDK bootstrap roles (deploy, file and image publishing, lookup) of the environment a "
     "delivery step deploys to: how `cdk deploy` works across accounts."),
    (r"^Resource::arn:{P}:(logs|codebuild):[a-z0-9-]+:\d{12}:"
     r"(log-group:/aws/codebuild/<[A-Za-z0-9]+>:\*|report-group/<[A-Za-z0-9]+>-\*)$",
     "CodeBuild's own log streams and test reports of that project (CDK's default policy)."),
]


PRIVILEGED = ("The deploy projects run `cdk deploy`, which builds the project image (a Docker "
              "asset) with the Docker daemon: CodeBuild runs it only in privileged mode. The "
              "other projects are not privileged.")


def privileged(project: Construct) -> None:
    """Acknowledge AwsSolutions-CB3 on one CodeBuild project that must build images."""
    NagSuppressions.add_resource_suppressions(project, [
        NagPackSuppression(id="AwsSolutions-CB3", reason=PRIVILEGED)])


def suppress(stage: Stage) -> None:
    """Acknowledge the IAM5 patterns above on every stack of `stage`."""
    rules = [NagPackSuppression(id=IAM5, reason=reason, applies_to=[
        RegexAppliesTo(regex="/" + pattern.replace("{P}", PARTITION) + "/g")])
             for pattern, reason in ACKNOWLEDGED]
    for child in stage.node.children:
        if isinstance(child, Stack):
            NagSuppressions.add_stack_suppressions(child, rules)
