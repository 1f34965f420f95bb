"""Service accounts with least-privilege roles: bindings sit on the bucket, repository or account
they need; only the roles Google offers no narrower scope for are granted on the project."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_gcp import artifactregistry, projects, serviceaccount, storage

import pulumi

# Who does what: the pipeline's steps, the scheduler that submits runs, the Cloud Build trigger.
PROJECT_ROLES = {
    "pipeline": ("roles/aiplatform.user", "roles/logging.logWriter"),
    "scheduler": ("roles/aiplatform.user",),
    "build": ("roles/aiplatform.user", "roles/logging.logWriter"),
}
BUCKET_ROLES = {"pipeline": "roles/storage.objectAdmin", "build": "roles/storage.objectViewer"}
REPOSITORY_ROLES = {"pipeline": "roles/artifactregistry.reader",
                    "build": "roles/artifactregistry.writer"}


@dataclass(frozen=True)
class IdentityArgs:
    gcp_project: str
    accounts: dict[str, str]             # role key -> service account id
    buckets: dict[str, pulumi.Input[str]]  # zone -> bucket name (the pipeline writes the lake)
    pipelines_bucket: pulumi.Input[str]
    region: str
    repository: pulumi.Input[str]


class Identity(pulumi.ComponentResource):
    """The three service accounts and their bindings; scheduler and build act as the pipeline."""

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
        for key, roles in PROJECT_ROLES.items():
            self.bindings += [projects.IAMMember(
                f"{name}-{key}-{role.split('/')[1]}", project=args.gcp_project, role=role,
                member=self.members[key], opts=self._child) for role in roles]
        self._buckets(name, args)
        for key, role in REPOSITORY_ROLES.items():
            self.bindings.append(artifactregistry.RepositoryIamMember(
                f"{name}-{key}-repository", repository=args.repository, location=args.region,
                role=role, member=self.members[key], opts=self._child))
        for key in ("scheduler", "build"):   # may start runs that execute as the pipeline
            self.bindings.append(serviceaccount.IAMMember(
                f"{name}-{key}-acts-as-pipeline", role="roles/iam.serviceAccountUser",
                service_account_id=self.accounts["pipeline"].name, member=self.members[key],
                opts=self._child))
        self.register_outputs({k: a.email for k, a in self.accounts.items()})

    def _buckets(self, name: str, args: IdentityArgs) -> None:
        for zone, bucket in {**args.buckets, "pipelines": args.pipelines_bucket}.items():
            self.bindings.append(storage.BucketIAMMember(
                f"{name}-pipeline-{zone}", bucket=bucket, role=BUCKET_ROLES["pipeline"],
                member=self.members["pipeline"], opts=self._child))
        self.bindings.append(storage.BucketIAMMember(
            f"{name}-build-pipelines", bucket=args.pipelines_bucket, role=BUCKET_ROLES["build"],
            member=self.members["build"], opts=self._child))
