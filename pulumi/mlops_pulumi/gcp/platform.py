"""The Google Cloud platform of one environment: the components, wired in dependency order."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_gcp as gcp

import pulumi
from mlops_kit.adapters.gcp import naming, rules
from mlops_kit.adapters.rules import requests_logged
from mlops_kit.steps.features import FeatureSet
from mlops_pulumi.config import Stack, refuse
from mlops_pulumi.gcp.alerts import Alerts, AlertsArgs
from mlops_pulumi.gcp.cicd import Cicd, CicdArgs
from mlops_pulumi.gcp.featurestore import FeatureStore, FeatureStoreArgs
from mlops_pulumi.gcp.foundation import Foundation, FoundationArgs
from mlops_pulumi.gcp.identity import Identity, IdentityArgs
from mlops_pulumi.gcp.lake import DataLake, DataLakeArgs
from mlops_pulumi.gcp.monitoring import DriftMonitoring, DriftMonitoringArgs
from mlops_pulumi.gcp.retention import CaptureRetention, CaptureRetentionArgs
from mlops_pulumi.gcp.serving import Serving, ServingArgs
from mlops_pulumi.gcp.training import Training, TrainingArgs
from mlops_pulumi.gcp.warehouse import Warehouse, WarehouseArgs

ROLES = ("pipeline", "scheduler", "build", "monitor")


@dataclass
class GcpPlatform:
    """Every component of the environment, as attributes for exports and tests."""

    foundation: Foundation
    lake: DataLake
    warehouse: Warehouse
    feature_store: FeatureStore
    identity: Identity
    training: Training
    serving: Serving
    alerts: Alerts
    monitoring: DriftMonitoring
    cicd: Cicd
    retention: CaptureRetention


def build(stack: Stack) -> GcpPlatform:
    """Create the environment's resources under one provider pinned to its project and region."""
    loaded, cfg, labels = stack.loaded, stack.loaded.config, stack.tags()
    refuse(rules.problems(loaded))   # before any resource is registered
    project, region, kms = naming.gcp_project(loaded), naming.region(loaded), cfg.gcp.kms_key
    provider = gcp.Provider("gcp", project=project, region=region)
    opts = pulumi.ResourceOptions(provider=provider)
    zones = stack.lake_zones()
    names = {z: naming.bucket(loaded, z) for z in (*zones, "pipelines")}
    foundation = Foundation("platform", FoundationArgs(
        region=region, repository=cfg.image.repository, kms_key=kms, labels=labels), opts)
    lake = DataLake("lake", DataLakeArgs(location=region, buckets=names, lake=cfg.lake,
                                         kms_key=kms, labels=labels), opts)
    dataset = naming.dataset(cfg.project, stack.env_name)
    warehouse = Warehouse("warehouse", WarehouseArgs(
        gcp_project=project, location=region, dataset=dataset, kms_key=kms, labels=labels,
        tables={z: (names[z], naming.lake_table(cfg, z)) for z in zones},
        features_table=cfg.features.group), opts)
    columns = FeatureSet(tuple(cfg.features.declared), cfg.table).columns
    feature_store = FeatureStore("features", FeatureStoreArgs(
        region=region, name=cfg.features.group, features=tuple(columns),
        source_uri=f"bq://{project}.{dataset}.{cfg.features.group}_registry",
        min_nodes=cfg.gcp.online_store_min_nodes, max_nodes=cfg.gcp.online_store_max_nodes,
        cpu_target=cfg.gcp.online_store_cpu_target, kms_key=kms, labels=labels,
        sync_cron=f"TZ={cfg.training.time_zone} {cfg.gcp.feature_sync_schedule}"),
        pulumi.ResourceOptions(provider=provider, depends_on=[warehouse]))
    identity = Identity("identity", IdentityArgs(
        gcp_project=project, region=region, repository=foundation.repository.name,
        accounts={r: naming.service_account_id(cfg.project, r) for r in ROLES},
        buckets={z: lake.buckets[z].name for z in zones},
        pipelines_bucket=lake.buckets["pipelines"].name, dataset=warehouse.dataset.dataset_id,
        pipelines_bucket_name=names["pipelines"],
        retrain_on_drift=cfg.training.retrain_on_drift), opts)
    training = Training("training", TrainingArgs(
        stack=stack, pipelines_bucket=lake.buckets["pipelines"].name, kms_key=kms,
        labels=labels, depends_on=(identity,)), opts)
    serving = Serving("serving", ServingArgs(stack=stack, region=region, kms_key=kms,
                                             labels=labels, depends_on=(warehouse,)), opts)
    alerts = Alerts("alerts", AlertsArgs(
        stem=naming.prefix(cfg.project, stack.env_name), emails=tuple(cfg.monitoring.alert_emails),
        serving=cfg.serving, gcp=cfg.gcp, labels=labels,
        endpoints={m: s.endpoint_id for m, s in serving.models.items()}), opts)
    monitoring = DriftMonitoring("monitoring", DriftMonitoringArgs(
        stack=stack, channels=[c.id for c in alerts.channels], kms_key=kms, labels=labels,
        depends_on=(identity, training, serving)), opts)
    cicd = Cicd("cicd", CicdArgs(stack=stack, pipelines_bucket=names["pipelines"],
                                 build_account=identity.accounts["build"].email,
                                 depends_on=(identity, training)), opts)
    logged = {m: naming.capture_table(m) for m in serving.models} if requests_logged(cfg) else {}
    retention = CaptureRetention("retention", CaptureRetentionArgs(
        gcp_project=project, location=region, dataset=warehouse.dataset.dataset_id,
        dataset_name=dataset, account=naming.service_account_id(cfg.project, "retention"),
        role_id=naming.custom_role_id(cfg.project, "retention", "rows"),
        tables=logged, days=cfg.serving.capture.retention_days), opts)
    return GcpPlatform(foundation, lake, warehouse, feature_store, identity, training, serving,
                       alerts, monitoring, cicd, retention)
