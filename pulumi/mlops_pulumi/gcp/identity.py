"""Service accounts with least-privilege roles: bindings sit on the bucket, repository or account
they need; only the roles Google offers no narrower scope for are granted on the project."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_gcp import artifactregistry, bigquery, projects, serviceaccount, storage

import pulumi
from mlops_kit.adapters.gcp import naming

# Who does what: the pipeline's steps, the scheduler that submits runs and monitoring jobs, the
# Cloud Build trigger, and the drift monitor (reads the request log, writes metrics).
PROJECT_ROLES = {
    "pipeline": ("roles/aiplatform.user", "roles/logging.logWriter"),
    "scheduler": ("roles/aiplatform.user",),
    "build": ("roles/aiplatform.user", "roles/logging.logWriter"),
    "monitor": ("roles/bigquery.jobUser", "roles/monitoring.metricWriter",
                "roles/logging.logWriter"),
}
# The Vertex AI calls of the drift monitor (adapters/gcp/monitor.py), in a custom role instead of
# aiplatform.user (which could deploy or delete endpoints and models): the registry's
# ListModelVersions and GetModel for the production baseline; CreatePipelineJob to retrain.
MONITOR_READS_MODELS = ("aiplatform.models.get", "aiplatform.models.list")
MONITOR_RETRAINS = ("aiplatform.pipelineJobs.create",)
BUCKET_ROLES = {"pipeline": "roles/storage.objectAdmin", "build": "roles/storage.objectViewer"}
REPOSITORY_ROLES = {"pipeline": "roles/artifactregistry.reader",
                    "build": "roles/artifactregistry.writer",
                    "monitor": "roles/artifactregistry.reader"}
MONITOR_READS = ("models/", "specs/")   # version files with baselines, the run requests


def monitor_permissions(retrain_on_drift: bool) -> list[str]:
    """The permissions of the monitor's Vertex AI role."""
    return [*MONITOR_READS_MODELS, *(MONITOR_RETRAINS if retrain_on_drift else ())]


def prefix_condition(bucket: str, prefixes: tuple[str, ...]) -> str:
    """CEL: objects under `prefixes` of `bucket`, and listings of those prefixes."""
    objects = [f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{p}")'
               for p in prefixes]
    lists = [f"api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\")"
             f'.startsWith("{p}")' for p in prefixes]
    return " || ".join(objects + lists)


@dataclass(frozen=True)
class IdentityArgs:
    gcp_project: str
    accounts: dict[str, str]             # role key -> service account id
    buckets: dict[str, pulumi.Input[str]]  # zone -> bucket name (the pipeline writes the lake)
    pipelines_bucket: pulumi.Input[str]
    region: str
    repository: pulumi.Input[str]
    dataset: pulumi.Input[str]            # the BigQuery dataset holding the request logs
    pipelines_bucket_name: str            # for the monitor's prefix conditions
    retrain_on_drift: bool


class Identity(pulumi.ComponentResource):
    """The service accounts and their bindings; scheduler and build act as the pipeline, the
    scheduler as the monitor, and the monitor as the pipeline when drift retrains."""

    def __init__(self, name: str, args: IdentityArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:Identity", name, None, opts)
        self._child = pulumi.ResourceOptions(parent=self)
        self.accounts = {
            key: serviceaccount.Account(
                f"{name}-{key}", account_id=account, display_name=f"mlops {key}",
                project=args.gcp_project, opts=self._child)
            for key, account in args.accounts.items()}
        self.members = {key: acc.email.apply(lambda e: f"serviceAccount:{e}")
                        for key, acc in self.accounts.items()}
        self.bindings: list[pulumi.CustomResource] = []
        for key, granted in PROJECT_ROLES.items():
            self.bindings += [projects.IAMMember(
                f"{name}-{key}-{role.split('/')[1]}", project=args.gcp_project, role=role,
                member=self.members[key], opts=self._child) for role in granted]
        self.monitor_role = self._monitor_role(name, args)
        self._buckets(name, args)
        self._monitor(name, args)
        for key, role in REPOSITORY_ROLES.items():
            self.bindings.append(artifactregistry.RepositoryIamMember(
                f"{name}-{key}-repository", repository=args.repository, location=args.region,
                role=role, member=self.members[key], opts=self._child))
        acts_as = [("scheduler", "pipeline"), ("build", "pipeline"), ("scheduler", "monitor")]
        if args.retrain_on_drift:   # the monitor submits runs that execute as the pipeline
            acts_as.append(("monitor", "pipeline"))
        for key, target in acts_as:
            self.bindings.append(serviceaccount.IAMMember(
                f"{name}-{key}-acts-as-{target}", role="roles/iam.serviceAccountUser",
                service_account_id=self.accounts[target].name, member=self.members[key],
                opts=self._child))
        self.register_outputs({k: a.email for k, a in self.accounts.items()})

    def _monitor_role(self, name: str, args: IdentityArgs) -> projects.IAMCustomRole:
        """The monitor's custom Vertex AI role on the project, and its binding."""
        role = projects.IAMCustomRole(
            f"{name}-monitor-vertex", project=args.gcp_project,
            role_id=f"{args.accounts['monitor'].replace('-', '_')}_vertex",
            title="mlops drift monitor (Vertex AI)", stage="GA",
            description="Read the registry's models; submit training runs on drift.",
            permissions=monitor_permissions(args.retrain_on_drift), opts=self._child)
        self.bindings.append(projects.IAMMember(
            f"{name}-monitor-vertex", project=args.gcp_project, member=self.members["monitor"],
            role=pulumi.Output.concat("projects/", args.gcp_project, "/roles/", role.role_id),
            opts=self._child))
        return role

    def _monitor(self, name: str, args: IdentityArgs) -> None:
        """Read the request logs (dataset), the baselines and run requests, write results."""
        member, bucket = self.members["monitor"], args.pipelines_bucket_name
        self.bindings.append(bigquery.DatasetIamMember(
            f"{name}-monitor-logs", dataset_id=args.dataset, role="roles/bigquery.dataViewer",
            member=member, opts=self._child))
        # objectUser on its own prefix: a rerun of a window overwrites its results.
        grants = [("read", "roles/storage.objectViewer", MONITOR_READS),
                  ("write", "roles/storage.objectUser", (naming.MONITORING_PREFIX,))]
        for label, role, prefixes in grants:
            self.bindings.append(storage.BucketIAMMember(
                f"{name}-monitor-{label}", bucket=args.pipelines_bucket, role=role,
                member=member, opts=self._child, condition={
                    "title": f"monitor {label}: {' '.join(prefixes)}",
                    "expression": prefix_condition(bucket, prefixes)}))

    def _buckets(self, name: str, args: IdentityArgs) -> None:
        for zone, bucket in {**args.buckets, "pipelines": args.pipelines_bucket}.items():
            self.bindings.append(storage.BucketIAMMember(
                f"{name}-pipeline-{zone}", bucket=bucket, role=BUCKET_ROLES["pipeline"],
                member=self.members["pipeline"], opts=self._child))
        self.bindings.append(storage.BucketIAMMember(
            f"{name}-build-pipelines", bucket=args.pipelines_bucket, role=BUCKET_ROLES["build"],
            member=self.members["build"], opts=self._child))
