"""Retention of the request logs: per model a BigQuery scheduled query, daily, deleting the rows
of `capture_<model>` older than `serving.capture.retention_days`. Vertex AI creates the table
itself (a declared one may be refused), so the script skips a table that does not exist yet.
It runs as its own service account, which may only read and change the rows of the
environment's dataset's tables (a custom role bound on the dataset) and run query jobs."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_gcp import bigquery, organizations, projects, serviceaccount

import pulumi
from mlops_kit.adapters.gcp.retention import capture_retention_sql

SCHEDULE = "every 24 hours"
# What the script needs on the dataset, from BigQuery's documented permissions: querying
# INFORMATION_SCHEMA.TABLES needs tables.get/list and routines.get/list; a DML DELETE reads
# (getData) and changes (updateData) the table's rows. Not tables.create/update/delete: the
# account cannot create, replace or drop the lake's external tables or the registry view.
DATASET_PERMISSIONS = ("bigquery.tables.get", "bigquery.tables.list",
                       "bigquery.tables.getData", "bigquery.tables.updateData",
                       "bigquery.routines.get", "bigquery.routines.list")
PROJECT_ROLE = "roles/bigquery.jobUser"      # run the query job (no narrower scope exists)
# The Data Transfer Service agent mints the account's tokens to run the scheduled query as it
# (granted on this account only, not on the project as the provider's example does).
TOKEN_CREATOR = "roles/iam.serviceAccountTokenCreator"


def transfer_agent(project_number: str) -> str:
    """The BigQuery Data Transfer Service agent of a project."""
    return (f"serviceAccount:service-{project_number}"
            "@gcp-sa-bigquerydatatransfer.iam.gserviceaccount.com")


@dataclass(frozen=True)
class CaptureRetentionArgs:
    gcp_project: str
    location: str                  # the dataset's location: the query runs there
    dataset: pulumi.Input[str]     # the dataset resource's id (orders the bindings after it)
    dataset_name: str              # the same name, for the query text
    account: str                   # the service account id
    role_id: str                   # the custom role's id (naming.custom_role_id)
    tables: dict[str, str]         # model -> capture table; empty when nothing is logged
    days: int                      # serving.capture.retention_days


class CaptureRetention(pulumi.ComponentResource):
    """The account, its custom dataset role, its bindings and a scheduled delete per capture
    table (none of them when no endpoint logs requests)."""

    def __init__(self, name: str, args: CaptureRetentionArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:CaptureRetention", name, None, opts)
        self.account: serviceaccount.Account | None = None
        self.role: projects.IAMCustomRole | None = None
        self.bindings: list[pulumi.CustomResource] = []
        self.schedules: dict[str, bigquery.DataTransferConfig] = {}
        if args.tables:
            self._identity(name, args)
            self.schedules = {model: self._schedule(name, model, table, args)
                              for model, table in args.tables.items()}
        self.register_outputs({"schedules": [s.name for s in self.schedules.values()]})

    def _identity(self, name: str, args: CaptureRetentionArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        self.account = serviceaccount.Account(
            f"{name}-account", account_id=args.account, project=args.gcp_project,
            display_name="mlops capture retention", opts=child)
        self.role = projects.IAMCustomRole(
            f"{name}-role", project=args.gcp_project, role_id=args.role_id,
            title="mlops capture retention", stage="GA",
            description="Delete old rows of the dataset's tables; no table changes.",
            permissions=list(DATASET_PERMISSIONS), opts=child)
        member = self.account.email.apply(lambda e: f"serviceAccount:{e}")
        number = organizations.get_project_output(project_id=args.gcp_project).number
        self.bindings = [
            bigquery.DatasetIamMember(f"{name}-dataset-rows", dataset_id=args.dataset,
                                      role=self.role.name, member=member, opts=child),
            projects.IAMMember(f"{name}-job-user", project=args.gcp_project,
                               role=PROJECT_ROLE, member=member, opts=child),
            serviceaccount.IAMMember(f"{name}-transfer-agent", role=TOKEN_CREATOR,
                                     service_account_id=self.account.name,
                                     member=number.apply(transfer_agent), opts=child)]

    def _schedule(self, name: str, model: str, table: str,
                  args: CaptureRetentionArgs) -> bigquery.DataTransferConfig:
        assert self.account is not None
        query = capture_retention_sql(args.gcp_project, args.dataset_name, table, args.days)
        return bigquery.DataTransferConfig(
            f"{name}-{model}", display_name=f"{args.dataset_name} {table} retention",
            data_source_id="scheduled_query", schedule=SCHEDULE, location=args.location,
            project=args.gcp_project, params={"query": query},
            service_account_name=self.account.email,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.bindings))
