"""The Vertex AI feature store: a feature group over BigQuery (the offline registry), an online
store on Bigtable that autoscales within the configured nodes, and a feature view syncing the
latest values on `gcp.feature_sync_schedule`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pulumi_gcp import vertex

import pulumi
from mlops_pulumi.gcp.warehouse import ENTITY


@dataclass(frozen=True)
class FeatureStoreArgs:
    region: str
    name: str                   # features.group
    source_uri: pulumi.Input[str]   # bq://project.dataset.view
    features: tuple[str, ...]   # the feature table's columns (FeatureSet.columns)
    min_nodes: int
    max_nodes: int
    cpu_target: int
    sync_cron: str              # "TZ=<zone> <5-field cron>"
    kms_key: str | None
    labels: dict[str, str]


def feature_id(column: str) -> str:
    """Vertex feature ids: lower-case letters, digits and '_', a letter first."""
    out = re.sub(r"[^a-z0-9_]", "_", column.lower())
    return out if out[:1].isalpha() else f"f_{out}"


class FeatureStore(pulumi.ComponentResource):
    """Feature group + features, online store, feature view over the registry."""

    def __init__(self, name: str, args: FeatureStoreArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:FeatureStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        group = args.name.replace("-", "_")
        self.group = vertex.AiFeatureGroup(
            f"{name}-group", name=group, region=args.region, labels=args.labels, opts=child,
            description=f"{args.name}: features by {ENTITY}",
            big_query={"big_query_source": {"input_uri": args.source_uri},
                       "entity_id_columns": [ENTITY]})
        self.features = {
            column: vertex.AiFeatureGroupFeature(
                f"{name}-{feature_id(column)}", name=feature_id(column), region=args.region,
                feature_group=self.group.name, version_column_name=column,
                labels=args.labels, opts=child)
            for column in args.features}
        encryption = {"encryption_spec": {"kms_key_name": args.kms_key}} if args.kms_key else {}
        self.online_store = vertex.AiFeatureOnlineStore(
            f"{name}-online", name=f"{group}_online", region=args.region, labels=args.labels,
            bigtable={"auto_scaling": {"min_node_count": args.min_nodes,
                                       "max_node_count": args.max_nodes,
                                       "cpu_utilization_target": args.cpu_target}},
            opts=child, **encryption)
        self.view = vertex.AiFeatureOnlineStoreFeatureview(
            f"{name}-view", name=f"{group}_latest", region=args.region,
            feature_online_store=self.online_store.name, labels=args.labels,
            sync_config={"cron": args.sync_cron},
            feature_registry_source={"feature_groups": [{
                "feature_group_id": self.group.name,
                "feature_ids": [f.name for f in self.features.values()]}]},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.features.values())))
        self.register_outputs({"group": self.group.name, "online_store": self.online_store.name,
                               "view": self.view.name})
