"""The Azure ML feature store: a workspace of kind FeatureStore, its entity and feature set."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_azure_native import machinelearningservices as ml

import pulumi
from mlops_kit.adapters.azure import naming
from mlops_pulumi import defaults

# Feature store data types of the config's column types (entity index columns).
DATA_TYPES = {"int": "Long", "float": "Double", "string": "String", "category": "String",
              "bool": "Boolean", "timestamp": "Datetime"}


@dataclass(frozen=True)
class FeatureStoreArgs:
    project: str
    env: str
    location: str
    resource_group: pulumi.Input[str]
    storage_id: pulumi.Input[str]
    key_vault_id: pulumi.Input[str]
    insights_id: pulumi.Input[str]
    registry_id: pulumi.Input[str]
    entity: str                 # the schema's entity id column
    entity_type: str            # its config type
    feature_set: str            # features.group
    features: tuple[str, ...]   # declared feature names
    tags: dict[str, str]


class FeatureStore(pulumi.ComponentResource):
    """Entity (indexed by the entity id) and the feature set's container, versioned by jobs."""

    def __init__(self, name: str, args: FeatureStoreArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:FeatureStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ws_name = f"{naming.prefix(args.project, args.env)}-fs"
        self.workspace = ml.Workspace(
            f"{name}-ws", workspace_name=ws_name, resource_group_name=args.resource_group,
            location=args.location, kind="FeatureStore", identity=defaults.IDENTITY,
            storage_account=args.storage_id, key_vault=args.key_vault_id,
            application_insights=args.insights_id, container_registry=args.registry_id,
            feature_store_settings={"offline_store_connection_name": "OfflineStoreConnection"},
            system_datastores_auth_mode="identity", tags=args.tags, opts=child)
        scope = {"resource_group_name": args.resource_group,
                 "workspace_name": self.workspace.name}
        entity = args.entity.replace("_", "-")
        self.entity = ml.FeaturestoreEntityContainerEntity(
            f"{name}-entity", name=entity, opts=child, **scope,
            properties={"description": f"{args.project}: rows keyed by {args.entity}",
                        "tags": args.tags})
        self.entity_version = ml.FeaturestoreEntityVersion(
            f"{name}-entity-v1", name=entity, version="1",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.entity]), **scope,
            properties={"index_columns": [{"column_name": args.entity,
                                           "data_type": DATA_TYPES[args.entity_type]}],
                        "tags": args.tags})
        self.feature_set = ml.FeaturesetContainerEntity(
            f"{name}-featureset", name=args.feature_set.replace("_", "-"), opts=child, **scope,
            properties={"description": f"features: {', '.join(args.features)}",
                        "tags": {**args.tags, "entity": entity}})
        self.register_outputs({"workspace": self.workspace.name, "entity": self.entity.name,
                               "feature_set": self.feature_set.name})
