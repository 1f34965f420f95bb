"""The Azure platform of one environment: the components, wired in dependency order."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_azure_native as azure_native

import pulumi
from mlops_kit.adapters.azure import naming, rules
from mlops_pulumi.azure.alerts import Alerts, AlertsArgs
from mlops_pulumi.azure.featurestore import FeatureStore, FeatureStoreArgs
from mlops_pulumi.azure.foundation import Foundation, FoundationArgs
from mlops_pulumi.azure.identity import JobIdentity, JobIdentityArgs
from mlops_pulumi.azure.lake import DataLake, DataLakeArgs
from mlops_pulumi.azure.monitoring import DriftMonitoring, DriftMonitoringArgs
from mlops_pulumi.azure.serving import Serving, ServingArgs, capture_on
from mlops_pulumi.azure.training import Training, TrainingArgs
from mlops_pulumi.azure.workspace import MlWorkspace, WorkspaceArgs
from mlops_pulumi.config import Stack, refuse


@dataclass
class AzurePlatform:
    """Every component of the environment, as attributes for exports and tests."""

    foundation: Foundation
    lake: DataLake
    workspace: MlWorkspace
    feature_store: FeatureStore
    identity: JobIdentity
    training: Training
    serving: Serving
    alerts: Alerts
    monitoring: DriftMonitoring


def lake_zones(stack: Stack) -> tuple[str, ...]:
    """raw/curated/quarantine plus every zone the pipeline publishes to."""
    return stack.lake_zones()


def build(stack: Stack) -> AzurePlatform:
    """Create the environment's Azure resources under one provider pinned to its subscription."""
    env, cfg, tags = stack.environment, stack.loaded.config, stack.tags()
    refuse(rules.problems(stack.loaded))     # before any resource is registered
    provider = azure_native.Provider("azure", subscription_id=env.subscription,
                                     location=env.region)
    opts = pulumi.ResourceOptions(provider=provider)
    base = {"project": cfg.project, "env": stack.env_name, "location": env.region, "tags": tags}
    foundation = Foundation("platform", FoundationArgs(
        log_retention_days=cfg.azure.log_retention_days, **base), opts)
    rg = foundation.resource_group.name
    zones = lake_zones(stack)
    lake = DataLake("lake", DataLakeArgs(resource_group=rg, zones=zones,
                                         sku=cfg.azure.storage_sku, **base), opts)
    shared = {"resource_group": rg, "key_vault_id": foundation.key_vault.id,
              "insights_id": foundation.insights.id,
              "registry_id": foundation.container_registry.id}
    workspace = MlWorkspace("ml", WorkspaceArgs(
        storage_sku=cfg.azure.storage_sku,
        capture_retention_days=cfg.serving.capture.retention_days, **shared, **base), opts)
    schema = cfg.table
    entity = schema.entity_id or schema.columns[0].name
    feature_store = FeatureStore("features", FeatureStoreArgs(
        storage_id=lake.account.id, entity=entity, entity_type=schema.column(entity).type,
        feature_set=cfg.features.group, features=tuple(f.name for f in cfg.features.declared),
        **shared, **base), opts)
    registry = naming.registry(cfg.project, stack.env_name)
    identity = JobIdentity("identity", JobIdentityArgs(
        subscription=env.subscription or "", resource_group=rg,
        workspace_id=workspace.workspace.id, workspace_storage_id=workspace.storage.id,
        registry_id=workspace.registry.id, container_registry_id=foundation.container_registry.id,
        retrain_on_drift=cfg.training.retrain_on_drift,
        **base), opts)
    scope = {"stack": stack, "location": env.region, "resource_group": rg,
             "workspace": workspace.workspace.name, "registry": registry, "tags": tags}
    training = Training("training", TrainingArgs(
        lake_account=lake.account.name, zones=zones, identity_id=identity.identity.id,
        **scope), opts)
    serving = Serving("serving", ServingArgs(
        image=training.image, workspace_storage_id=workspace.storage.id, **scope), opts)
    deployments = {m: s.deployment.id for m, s in serving.models.items() if s.deployment}
    alerts = Alerts("alerts", AlertsArgs(
        project=cfg.project, env=stack.env_name, resource_group=rg,
        emails=tuple(cfg.monitoring.alert_emails), serving=cfg.serving,
        deployments=deployments, tags=tags), opts)
    monitoring = DriftMonitoring("monitoring", DriftMonitoringArgs(
        stack=stack, location=env.region, resource_group=rg,
        workspace=workspace.workspace.name,
        models=tuple(deployments) if capture_on(stack) else (),
        cluster_id=training.cluster.id, environment_id=training.environment.id,
        identity_client_id=identity.identity.client_id, insights_id=foundation.insights.id,
        insights_connection_string=foundation.insights.connection_string,
        action_group_id=alerts.action_group.id, tags=tags), opts)
    return AzurePlatform(foundation, lake, workspace, feature_store, identity, training,
                         serving, alerts, monitoring)
