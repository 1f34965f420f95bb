"""Names of the Google Cloud resources, derived from the config (Pulumi and the renderer share
them, so the pipeline spec can name buckets and accounts without waiting for outputs)."""

from __future__ import annotations

import hashlib
import re

from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import ProjectConfig

BUCKET_MAX = 63


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def prefix(project: str, env: str) -> str:
    """`<project>-<env>` with '_' as '-': the stem of resource names."""
    return f"{project}-{env}".replace("_", "-").lower()


def gcp_project(loaded: LoadedConfig) -> str:
    """The environment's Google Cloud project id."""
    env = loaded.environment
    if env is None or env.cloud != "gcp" or not env.project:
        raise ValueError(f"environment {loaded.env!r} is not a gcp environment")
    return env.project


def region(loaded: LoadedConfig) -> str:
    env = loaded.environment
    assert env is not None  # gcp_project checks it
    return env.region


def bucket(loaded: LoadedConfig, zone: str) -> str:
    """A lake zone's (or `pipelines`') bucket of the environment."""
    return bucket_name(gcp_project(loaded), prefix(loaded.config.project, str(loaded.env)), zone)


def bucket_name(gcp_project_id: str, stem: str, zone: str) -> str:
    """`<gcp project>-<stem>-<zone>`, shortened with a hash to GCS's 63 characters."""
    name = re.sub(r"[^a-z0-9-]", "-", f"{gcp_project_id}-{stem}-{zone}".lower())
    if len(name) <= BUCKET_MAX:
        return name
    tail = f"-{_digest(name, 6)}-{zone}"
    return name[: BUCKET_MAX - len(tail)].rstrip("-") + tail


def lake_table(config: ProjectConfig, zone: str) -> str:
    """The table folder of a zone; the same rule as `runtime.lake.table_name`."""
    return config.features.group if zone == "features" else f"{zone}_{config.table.table}"


def dataset(project: str, env: str) -> str:
    """The BigQuery dataset: letters, digits and '_'."""
    return re.sub(r"[^a-z0-9_]", "_", f"{project}_{env}".lower())


def image(loaded: LoadedConfig) -> str:
    """The project image in the environment's Artifact Registry repository."""
    cfg = loaded.config
    return (f"{region(loaded)}-docker.pkg.dev/{gcp_project(loaded)}/{cfg.image.repository}/"
            f"{cfg.project}:{cfg.image.tag}")


def service_account_id(project: str, role: str) -> str:
    """A service account id: 6-30 characters, a letter first, '-' inside."""
    stem = re.sub(r"[^a-z0-9-]", "-", project.lower()).strip("-")
    name = f"{stem}-{role}"
    if len(name) > 30:
        name = f"{stem[: 29 - len(role) - 5]}-{_digest(stem, 4)}-{role}"
    return name if name[0].isalpha() else f"m{name}"[:30]


def custom_role_id(project: str, role: str, purpose: str) -> str:
    """A project custom role of a service account (`service_account_id(project, role)`):
    `<account id with '_'>_<purpose>`, letters, digits and '_' (at most 64)."""
    return re.sub(r"[^A-Za-z0-9_]", "_",
                  f"{service_account_id(project, role)}_{purpose}")[:64]


def service_account_email(loaded: LoadedConfig, role: str) -> str:
    return (f"{service_account_id(loaded.config.project, role)}@{gcp_project(loaded)}"
            ".iam.gserviceaccount.com")


def endpoint_id(project: str, env: str, model: str) -> str:
    """Vertex endpoint ids are numeric (at most 10 digits, no leading zero): a stable hash."""
    number = int(_digest(f"{project}/{env}/{model}", 12), 16)
    return str(1_000_000_000 + number % 9_000_000_000)


def resource_pool(project: str, env: str, model: str) -> str:
    """A deployment resource pool id: lower-case letters, digits and '-', at most 63."""
    return f"{prefix(project, env)}-{model}".lower()[:63].rstrip("-")


def pipeline_name(pipeline: str, model: str) -> str:
    """The pipeline's name in its spec and on its runs."""
    return re.sub(r"[^a-z0-9-]", "-", f"{pipeline}-{model}".lower())


def location(loaded: LoadedConfig) -> str:
    """`projects/<id>/locations/<region>`: the parent of the environment's Vertex resources."""
    return f"projects/{gcp_project(loaded)}/locations/{region(loaded)}"


def vertex_model_id(project: str, model: str) -> str:
    """The Vertex model id of a model: `[a-z0-9_-]`, at most 63, not starting with a digit or
    '-' (every registered version of the model is a version of this one Vertex model)."""
    name = re.sub(r"[^a-z0-9_-]", "-", f"{project}-{model}".lower())[:63]
    return name if name[0].isalpha() or name[0] == "_" else f"m{name}"[:63]


def capture_table(model: str) -> str:
    """The BigQuery table (in the environment's dataset) Vertex AI logs a model's endpoint
    requests and responses to: `capture_<model>`, letters, digits and '_'."""
    return re.sub(r"[^a-z0-9_]", "_", f"capture_{model}".lower())[:1024]


def capture_uri(loaded: LoadedConfig, model: str) -> str:
    """`bq://<project>.<dataset>.<table>`: the endpoint's logging destination."""
    ds = dataset(loaded.config.project, str(loaded.env))
    return f"bq://{gcp_project(loaded)}.{ds}.{capture_table(model)}"


def run_request_object(model: str) -> str:
    """Where a model's pipeline run request lies in the pipelines bucket (the training
    schedule's body; Cloud Build and the drift monitor post it)."""
    return f"specs/{model}/pipeline-job.json"


MONITORING_PREFIX = "monitoring/"  # the drift monitor's results in the pipelines bucket


def metric_type(namespace: str, name: str) -> str:
    """A drift metric's Cloud Monitoring type: `custom.googleapis.com/<namespace>/<name>`."""
    clean = [re.sub(r"[^A-Za-z0-9_]", "_", part) for part in (namespace, name)]
    return "custom.googleapis.com/" + "/".join(clean)
