"""Each policy rule, with a passing and a failing resource."""

from __future__ import annotations

import pytest

from mlops_pulumi.policies import (
    RULES,
    autoscaling_bounded,
    encryption_on,
    public_access_off,
    required_tags,
    violations,
)

ACCOUNT = "azure-native:storage:StorageAccount"
TAGS = {"project": "churn", "environment": "dev", "managed-by": "pulumi"}
GOOD_ACCOUNT = {"encryption": {"services": {"blob": {"enabled": True}}},
                "minimumTlsVersion": "TLS1_2", "enableHttpsTrafficOnly": True,
                "allowBlobPublicAccess": False, "tags": TAGS}


def test_encryption_on() -> None:
    assert encryption_on(ACCOUNT, GOOD_ACCOUNT) == []
    bad = {**GOOD_ACCOUNT, "encryption": {}, "minimumTlsVersion": "TLS1_0"}
    assert encryption_on(ACCOUNT, bad) == ["blob encryption is not enabled",
                                           "minimumTlsVersion is 'TLS1_0', not TLS1_2"]


def test_public_access_off() -> None:
    assert public_access_off(ACCOUNT, GOOD_ACCOUNT) == []
    assert public_access_off(ACCOUNT, {**GOOD_ACCOUNT, "allowBlobPublicAccess": True}) == [
        "allowBlobPublicAccess is True, must be False"]
    bucket = "gcp:storage/bucket:Bucket"
    assert public_access_off(bucket, {"publicAccessPrevention": "enforced",
                                      "uniformBucketLevelAccess": True}) == []
    assert public_access_off(bucket, {"publicAccessPrevention": "inherited",
                                      "uniformBucketLevelAccess": True}) != []
    registry = "azure-native:containerregistry:Registry"
    assert public_access_off(registry, {"adminUserEnabled": True,
                                        "anonymousPullEnabled": False}) != []


def test_required_tags() -> None:
    assert required_tags(ACCOUNT, GOOD_ACCOUNT) == []
    assert required_tags(ACCOUNT, {"tags": {"project": "churn"}}) == [
        "missing tag(s)/label(s) ['environment', 'managed-by']"]
    assert required_tags("gcp:storage/bucket:Bucket", {"labels": TAGS}) == []
    assert required_tags("gcp:storage/bucket:Bucket", {"labels": {}}) != []
    assert required_tags("azure-native:storage:BlobContainer", {}) == []   # not taggable


@pytest.mark.parametrize(("low", "high", "ok"), [("1", "4", True), ("0", "4", False),
                                                 ("3", "2", False), (None, "2", False)])
def test_autoscaling_bounded(low: str | None, high: str, ok: bool) -> None:
    setting = {"profiles": [{"capacity": {"minimum": low, "maximum": high}}]}
    assert (autoscaling_bounded("azure-native:monitor:AutoscaleSetting", setting) == []) is ok
    pool = {"dedicatedResources": {"minReplicaCount": low, "maxReplicaCount": high}}
    kind = "gcp:vertex/aiDeploymentResourcePool:AiDeploymentResourcePool"
    assert (autoscaling_bounded(kind, pool) == []) is ok


def test_an_autoscale_setting_without_profile_fails() -> None:
    assert autoscaling_bounded("azure-native:monitor:AutoscaleSetting", {}) == [
        "no autoscale profile"]


def test_violations_name_their_rule_and_the_pack_has_every_rule() -> None:
    assert violations(ACCOUNT, {**GOOD_ACCOUNT, "tags": {}})[0].startswith("required-tags: ")
    assert [r.name for r in RULES] == ["encryption-on", "public-access-off", "required-tags",
                                       "autoscaling-bounded"]
