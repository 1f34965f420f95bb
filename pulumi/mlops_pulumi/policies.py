"""Policy rules as plain functions over a resource's type token and its (camelCase) properties.

The mocked unit tests call them on every resource a stack creates, and `pulumi/policy/` wraps
the same functions as a Pulumi policy pack (`pulumi preview --policy-pack pulumi/policy`).
Each rule returns its violations; an empty list passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REQUIRED_TAGS = ("project", "environment", "managed-by")
# Resource families that carry tags (Azure) or labels (GCP) in this program.
TAGGED = (
    "resources:ResourceGroup", "storage:StorageAccount", "keyvault:Vault",
    "containerregistry:Registry", "machinelearningservices:Workspace",
    "machinelearningservices:Registry", "machinelearningservices:OnlineEndpoint",
    "machinelearningservices:OnlineDeployment", "machinelearningservices:Compute",
    "monitor:AutoscaleSetting", "monitor:MetricAlert", "monitor:ActionGroup",
    "storage/bucket:Bucket", "bigquery/dataset:Dataset", "vertex/aiEndpoint:AiEndpoint",
    "vertex/aiFeatureOnlineStore:AiFeatureOnlineStore",
    "artifactregistry/repository:Repository", "bigquery/table:Table",
    "vertex/aiFeatureGroup:AiFeatureGroup", "vertex/aiFeatureGroupFeature:AiFeatureGroupFeature",
    "vertex/aiFeatureOnlineStoreFeatureview:AiFeatureOnlineStoreFeatureview",
    "monitoring/alertPolicy:AlertPolicy", "monitoring/notificationChannel:NotificationChannel",
)
# GCP resources whose `labels` configure the resource: their tags are `userLabels`.
USER_LABELS = ("monitoring/alertPolicy:AlertPolicy",
               "monitoring/notificationChannel:NotificationChannel")
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
# GCP resources with a customer-managed key block: if present, it must name a key.
KMS_BLOCKS = {"storage/bucket:Bucket": ("encryption", "defaultKmsKeyName"),
              "bigquery/table:Table": ("encryptionConfiguration", "kmsKeyName")}

Props = dict[str, Any]


def encryption_on(kind: str, props: Props) -> list[str]:
    """Storage is encrypted at rest and reached over TLS 1.2 only."""
    out = []
    if kind.endswith("storage:StorageAccount"):
        services = (props.get("encryption") or {}).get("services") or {}
        if not (services.get("blob") or {}).get("enabled"):
            out.append("blob encryption is not enabled")
        if props.get("minimumTlsVersion") != "TLS1_2":
            out.append(f"minimumTlsVersion is {props.get('minimumTlsVersion')!r}, not TLS1_2")
        if props.get("enableHttpsTrafficOnly") is not True:
            out.append("HTTPS-only traffic is not enforced")
    if kind.endswith("bigquery/dataset:Dataset") and "defaultEncryptionConfiguration" in props \
            and not (props["defaultEncryptionConfiguration"] or {}).get("kmsKeyName"):
        out.append("a default encryption configuration without a KMS key")
    for suffix, (block, key) in KMS_BLOCKS.items():
        if kind.endswith(suffix) and block in props and not (props[block] or {}).get(key):
            out.append(f"{block} without {key}")
    if kind.startswith("gcp:vertex/") and "encryptionSpec" in props \
            and not (props["encryptionSpec"] or {}).get("kmsKeyName"):
        out.append("encryptionSpec without kmsKeyName")
    return out


def public_access_off(kind: str, props: Props) -> list[str]:
    """No anonymous reads: blobs, containers, registries, buckets and datasets are private,
    and no IAM binding grants anything to allUsers or allAuthenticatedUsers."""
    checks: dict[str, list[tuple[str, Any]]] = {
        "storage:StorageAccount": [("allowBlobPublicAccess", False)],
        "storage:BlobContainer": [("publicAccess", "None")],
        "containerregistry:Registry": [("adminUserEnabled", False),
                                       ("anonymousPullEnabled", False)],
        "storage/bucket:Bucket": [("publicAccessPrevention", "enforced"),
                                  ("uniformBucketLevelAccess", True)],
    }
    member = str(props.get("member") or "")
    if kind.startswith("gcp:") and member in PUBLIC_MEMBERS:
        return [f"{member} is granted {props.get('role')!r}"]
    if kind.endswith("bigquery/dataset:Dataset"):
        return [f"dataset access for {who}" for a in props.get("accesses") or []
                for who in (a.get("specialGroup"), a.get("iamMember")) if who in PUBLIC_MEMBERS]
    for suffix, wanted in checks.items():
        if kind.endswith(suffix):
            return [f"{key} is {props.get(key)!r}, must be {value!r}"
                    for key, value in wanted if props.get(key) != value]
    return []


def required_tags(kind: str, props: Props) -> list[str]:
    """Every taggable resource says which project and environment it belongs to."""
    if not kind.endswith(TAGGED):
        return []
    key = "userLabels" if kind.endswith(USER_LABELS) else "labels" if "labels" in props \
        else "tags"
    tags = props.get(key)
    missing = [t for t in REQUIRED_TAGS if not (tags or {}).get(t)]
    return [f"missing tag(s)/label(s) {missing}"] if missing else []


def autoscaling_bounded(kind: str, props: Props) -> list[str]:
    """Autoscaling has a floor of at least one instance and a ceiling not below it."""
    bounds: list[tuple[Any, Any]] = []
    if kind.endswith("monitor:AutoscaleSetting"):
        bounds = [((p.get("capacity") or {}).get("minimum"), (p.get("capacity") or {})
                   .get("maximum")) for p in props.get("profiles") or []]
        if not bounds:
            return ["no autoscale profile"]
    elif kind.endswith("vertex/aiDeploymentResourcePool:AiDeploymentResourcePool"):
        res = props.get("dedicatedResources") or {}
        bounds = [(res.get("minReplicaCount"), res.get("maxReplicaCount"))]
        targets = [m.get("target") for m in res.get("autoscalingMetricSpecs") or []]
        if not all(t is not None and 1 <= int(t) <= 100 for t in targets):
            return [f"utilization targets {targets}: each must be within 1..100"]
    elif kind.endswith("vertex/aiFeatureOnlineStore:AiFeatureOnlineStore"):
        scale = ((props.get("bigtable") or {}).get("autoScaling") or {})
        bounds = [(scale.get("minNodeCount"), scale.get("maxNodeCount"))]
    out = []
    for low, high in bounds:
        if low is None or high is None:
            out.append("minimum and maximum must both be set")
        elif int(low) < 1 or int(high) < int(low):
            out.append(f"bounds {low}..{high}: need 1 <= minimum <= maximum")
    return out


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[[str, Props], list[str]]


RULES = tuple(Rule(f.__name__.replace("_", "-"), (f.__doc__ or "").strip(), f) for f in
              (encryption_on, public_access_off, required_tags, autoscaling_bounded))


def violations(kind: str, props: Props) -> list[str]:
    """Every rule's violations for one resource, each prefixed by the rule's name."""
    return [f"{rule.name}: {v}" for rule in RULES for v in rule.check(kind, props)]
