"""The S3 lifecycle rule of the endpoints' capture prefix, from `serving.capture.retention_days`:
the data lake construct alone, synthesized once (the whole app is tests/test_cdk.py)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

if not shutil.which("node"):  # aws-cdk-lib runs on Node.js through jsii (see test_cdk.py)
    pytest.fail("tests/test_cdk_capture.py needs Node.js on PATH", pytrace=False)
cdk = pytest.importorskip("aws_cdk")
from aws_cdk import aws_kms as kms  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402
from mlops_cdk.app import cdk_context  # noqa: E402
from mlops_cdk.data_lake import CAPTURE_PREFIX, DataLake  # noqa: E402
from mlops_cdk.settings import EnvSettings  # noqa: E402

from mlops_kit.config import load_config  # noqa: E402
from tests.conftest import ROOT  # noqa: E402


@pytest.fixture(scope="module")
def template() -> Template:
    loaded = load_config(ROOT / "mlops.yaml", env="dev",
                         sets=["serving.capture.retention_days=14"])
    settings = EnvSettings(loaded, "dev", "111111111111", "eu-west-1", "mlops.yaml")
    where = cdk.Environment(account=settings.account, region=settings.region)
    stack = cdk.Stack(cdk.App(context=cdk_context(ROOT)), "Lake", env=where)
    DataLake(stack, "Lake", settings=settings, key=kms.Key(stack, "Key"))
    return Template.from_stack(stack)


def artifacts_rules(template: Template) -> list[dict[str, Any]]:
    buckets = template.find_resources("AWS::S3::Bucket", {"Properties": {
        "BucketName": "churn-artifacts-111111111111-eu-west-1"}})
    (bucket,) = buckets.values()
    rules: list[dict[str, Any]] = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    return rules


def test_capture_prefix_expires_after_the_configured_days(template: Template) -> None:
    template.has_resource_properties("AWS::S3::Bucket", {
        "BucketName": "churn-artifacts-111111111111-eu-west-1",
        "LifecycleConfiguration": {"Rules": Match.array_with([{
            "Id": "capture-retention", "Prefix": f"{CAPTURE_PREFIX}/", "ExpirationInDays": 14,
            "Status": "Enabled"}])}})


def test_only_the_capture_prefix_expires(template: Template) -> None:
    """Models and baselines in the same bucket keep only the old-versions rule."""
    expiring = [r for r in artifacts_rules(template) if "ExpirationInDays" in r]
    assert [r.get("Prefix") for r in expiring] == ["capture/"]
    old_versions = next(r for r in artifacts_rules(template) if r.get("Id") == "old-versions")
    assert "Prefix" not in old_versions  # expired capture versions go after noncurrent days
