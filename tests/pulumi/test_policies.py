"""Each policy rule, with a passing and a failing resource."""

from __future__ import annotations

from typing import Any

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


KEY = "projects/p/locations/europe-west1/keyRings/r/cryptoKeys/k"


@pytest.mark.parametrize(("kind", "good", "bad"), [
    ("gcp:storage/bucket:Bucket", {"encryption": {"defaultKmsKeyName": KEY}},
     {"encryption": {}}),
    ("gcp:bigquery/table:Table", {"encryptionConfiguration": {"kmsKeyName": KEY}},
     {"encryptionConfiguration": {"kmsKeyName": ""}}),
    ("gcp:vertex/aiEndpoint:AiEndpoint", {"encryptionSpec": {"kmsKeyName": KEY}},
     {"encryptionSpec": {}}),
    ("gcp:bigquery/dataset:Dataset", {}, {"defaultEncryptionConfiguration": {}}),
])
def test_gcp_encryption_blocks_name_a_key(kind: str, good: dict[str, Any],
                                          bad: dict[str, Any]) -> None:
    assert encryption_on(kind, good) == []
    assert len(encryption_on(kind, bad)) == 1


@pytest.mark.parametrize("member", ["allUsers", "allAuthenticatedUsers"])
def test_no_gcp_binding_is_public(member: str) -> None:
    for kind in ("gcp:storage/bucketIAMMember:BucketIAMMember",
                 "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
                 "gcp:projects/iAMMember:IAMMember"):
        assert public_access_off(kind, {"member": "serviceAccount:a@p.iam.gserviceaccount.com",
                                        "role": "roles/x"}) == []
        assert public_access_off(kind, {"member": member, "role": "roles/x"}) == [
            f"{member} is granted 'roles/x'"]
    dataset = "gcp:bigquery/dataset:Dataset"
    assert public_access_off(dataset, {"accesses": [{"role": "READER",
                                                     "userByEmail": "a@example.com"}]}) == []
    assert public_access_off(dataset, {"accesses": [{"role": "READER",
                                                     "specialGroup": member}]}) != []


def test_gcp_monitoring_resources_carry_user_labels() -> None:
    kind = "gcp:monitoring/notificationChannel:NotificationChannel"
    assert required_tags(kind, {"labels": {"email_address": "a@example.com"},
                                "userLabels": TAGS}) == []
    assert required_tags(kind, {"labels": {"email_address": "a@example.com"}}) != []
    assert required_tags("gcp:bigquery/table:Table", {"labels": {"project": "churn"}}) != []


@pytest.mark.parametrize(("low", "high", "ok"), [(1, 3, True), (0, 3, False), (4, 2, False)])
def test_gcp_online_store_nodes_bounded(low: int, high: int, ok: bool) -> None:
    store = {"bigtable": {"autoScaling": {"minNodeCount": low, "maxNodeCount": high}}}
    kind = "gcp:vertex/aiFeatureOnlineStore:AiFeatureOnlineStore"
    assert (autoscaling_bounded(kind, store) == []) is ok


@pytest.mark.parametrize(("targets", "ok"), [([60], True), ([], True), ([0], False),
                                             ([101], False)])
def test_gcp_pool_utilization_target_is_a_percentage(targets: list[int], ok: bool) -> None:
    pool = {"dedicatedResources": {"minReplicaCount": 1, "maxReplicaCount": 2,
                                   "autoscalingMetricSpecs": [{"metricName": "m", "target": t}
                                                              for t in targets]}}
    kind = "gcp:vertex/aiDeploymentResourcePool:AiDeploymentResourcePool"
    assert (autoscaling_bounded(kind, pool) == []) is ok
