"""A Cloud Build trigger on git push to `cicd.branch`: test, build and push the project image,
deploy the approved model versions to their endpoints (`mlops_kit.adapters.gcp.release`), then
start every model's training pipeline (the run request Training stored). An environment
whose registry approval is `manual` needs a reviewer to approve each build before it runs.

Each step runs in an image that has what it calls (tests/pulumi/test_ci_runners.py runs them
as Cloud Build starts them). Cloud Build substitutes `$NAME` in the arguments: a literal `$`
is written `$$`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pulumi_gcp import cloudbuild

import pulumi
from mlops_kit.adapters.gcp import naming
from mlops_kit.image import image_build_flags
from mlops_pulumi import ci
from mlops_pulumi.config import Stack
from mlops_pulumi.gcp.training import jobs_uri

# `make test` needs Python 3.11 with venv and Node.js (aws-cdk-lib's jsii, the pinned cdk CLI).
# node:<N>-bookworm (nodejs/docker-node) is buildpack-deps:bookworm (git, make, curl) with Node.js
# and npm; apt adds Debian bookworm's python3, which is 3.11, with ensurepip and headers.
TEST_IMAGE = f"node:{ci.NODE}-bookworm"
TEST_SCRIPT = ("apt-get update -qq && apt-get install -qqy --no-install-recommends python3 "
               "python3-venv python3-dev && make test")
DOCKER = "gcr.io/cloud-builders/docker"   # ENTRYPOINT docker, on the build VM's daemon
# debian slim with gcloud, bash and curl (GoogleCloudPlatform/cloud-sdk-docker debian_slim).
GCLOUD = "gcr.io/google.com/cloudsdktool/cloud-sdk:slim"


@dataclass(frozen=True)
class CicdArgs:
    stack: Stack
    pipelines_bucket: str
    build_account: pulumi.Input[str]   # service account email
    depends_on: tuple[pulumi.Resource, ...] = ()


def build_steps(stack: Stack, bucket: str) -> list[dict[str, Any]]:
    """Test, build, push, deploy the approved versions, then POST each run request."""
    loaded = stack.loaded
    image = naming.image(loaded)
    repo = image.rsplit(":", 1)[0]
    steps: list[dict[str, Any]] = [
        {"id": "test", "name": TEST_IMAGE, "entrypoint": "bash", "args": ["-c", TEST_SCRIPT]},
        # The commit goes into the image (MLOPS_GIT_COMMIT): registered versions record it.
        {"id": "image", "name": DOCKER, "args": ["build", *image_build_flags(loaded),
                                                  "--build-arg", "EXTRAS=vertex", "-t", image,
                                                  "-t", f"{repo}:$SHORT_SHA", "--build-arg",
                                                  "GIT_COMMIT=$COMMIT_SHA", "."]},
        {"id": "push", "name": DOCKER, "args": ["push", "--all-tags", repo]},
        # The approved versions go to their endpoints (a no-op when they already serve), from
        # the image just built (the daemon's copy) with the config it holds.
        {"id": "deploy", "name": image, "entrypoint": "python",
         "args": ["-m", "mlops_kit.adapters.gcp.release", "deploy", "--config",
                  loaded.config.image.config_path, "--env", str(loaded.env)]},
    ]
    uri = jobs_uri(naming.gcp_project(loaded), naming.region(loaded))
    for model in (m.name for m in loaded.config.all_models):
        request = naming.run_request_object(model)
        script = (f"gcloud storage cat gs://{bucket}/{request} > job.json && "
                  'curl -fsS -X POST -H "Authorization: Bearer $$(gcloud auth '
                  'print-access-token)" -H "Content-Type: application/json" '
                  f"-d @job.json {uri}")
        steps.append({"id": f"train-{model}", "name": GCLOUD, "entrypoint": "bash",
                      "args": ["-c", script]})
    return steps


class Cicd(pulumi.ComponentResource):
    """The push trigger of the environment (none without `cicd.repository`)."""

    def __init__(self, name: str, args: CicdArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:Cicd", name, None, opts)
        stack, cfg = args.stack, args.stack.loaded.config
        self.trigger: cloudbuild.Trigger | None = None
        if cfg.cicd.repository is None:
            self.register_outputs({})
            return
        owner, repo = cfg.cicd.repository.split("/")
        account = pulumi.Output.concat("projects/", naming.gcp_project(stack.loaded),
                                       "/serviceAccounts/", args.build_account)
        self.trigger = cloudbuild.Trigger(
            f"{name}-push", name=f"{naming.prefix(cfg.project, stack.env_name)}-push"[:64],
            location="global", description=f"git push to {cfg.cicd.branch}: test, image, train",
            github={"owner": owner, "name": repo,
                    "push": {"branch": f"^{re.escape(cfg.cicd.branch)}$"}},
            service_account=account, tags=["mlops", stack.env_name.replace("_", "-")],
            approval_config={"approval_required": cfg.registry.approval == "manual"},
            build={"steps": build_steps(stack, args.pipelines_bucket), "timeout": "7200s",
                   "options": {"logging": "CLOUD_LOGGING_ONLY"}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)))
        self.register_outputs({"trigger": self.trigger.id})
