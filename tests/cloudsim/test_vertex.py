"""The Vertex AI pipeline the Pulumi program deploys, executed as Vertex would: runs on two
days' CSV deliveries, a redelivery of the second day, and an environment whose gate nothing
passes.

What Vertex gets is the run request the program stores (`specs/<model>/pipeline-job.json`,
read from the Pulumi mocks: what the schedule, the push trigger and the drift monitor POST),
started with the two run parameters a user passes; the buckets are the ones the program
declares; the image is built from `docker/Dockerfile` with the build arguments of the Cloud
Build trigger's image step. The registry is the real `VertexRegistry` on stand-in clients
(`gcp_clients`, models in a JSON file, files in the `/gcs` folders), which the harness puts
into each job through `sitehook`: the one thing it adds to a job's environment.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.cloudsim import project
from tests.cloudsim.container import Image, Sandbox, namespaces_available

pytest.importorskip("kfp")
pytest.importorskip("google.cloud.aiplatform_v1")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800), pytest.mark.skipif(
    not namespaces_available(), reason="needs user and mount namespaces (unshare -Urm)")]

MODEL = "churn-classifier"
ENVS = {"gcp_dev": "churn-dev-111111", "gcp_gate": "churn-gate-222222",
        "gcp_naive": "churn-naive-333333"}
REDELIVERED = 1500  # rows of the second day's corrected delivery
SUBSTITUTIONS = {"COMMIT_SHA": project.COMMIT, "SHORT_SHA": project.COMMIT[:7],
                 "BRANCH_NAME": "main"}  # what Cloud Build sets for a push build


@dataclass
class Deployed:
    """One environment as `pulumi up` would leave it: what the harness reads from it."""

    env: str
    buckets: dict[str, str]        # zone (or "pipelines") -> bucket name
    request: dict[str, Any]        # the stored run request
    build_args: dict[str, str]     # of the Cloud Build trigger's image step
    vertex: Any = None             # the Vertex emulator of its project
    state: Path | None = None      # the stand-in Model Registry's state


@dataclass
class World:
    config: Path
    gcs: Path
    envs: dict[str, Deployed]
    runs: dict[str, list[Any]]


def write_harness_project(folder: Path) -> Path:
    """The harness project on Google Cloud: dev; `gate` (nothing passes its quality gate);
    `naive` (for the spec KFP compiles when nothing sets caching), each its own project."""
    config = project.write_project(folder, {"cicd": {"repository": "example-org/churn"}})
    raw = yaml.safe_load(config.read_text())
    dev = {**raw["environments"]["gcp_dev"], "project": ENVS["gcp_dev"]}
    raw["environments"] = {
        "gcp_dev": dev,
        "gcp_gate": {**dev, "project": ENVS["gcp_gate"],
                     "overrides": {"quality_gate": {"min_value": 0.999}}},
        "gcp_naive": {**dev, "project": ENVS["gcp_naive"]}}
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


def deploy(config: Path, env: str) -> Deployed:
    """Run the Pulumi program under mocks; the buckets, run request and image build step."""
    import pulumi
    from mlops_kit.adapters.gcp import naming
    from mlops_pulumi.config import load_stack
    from mlops_pulumi.gcp.platform import build
    from tests.pulumi.mocks import MOCKS

    @pulumi.runtime.test  # type: ignore[misc]
    def up() -> Any:
        MOCKS.reset()
        platform = build(load_stack(env, config))
        ids = [r.id for r in platform.training.requests.values()]
        ids += [b.id for b in platform.lake.buckets.values()]
        return pulumi.Output.all(*ids, platform.cicd.trigger.id)

    up()
    buckets = {c.name.removeprefix("lake-"): c.inputs["name"]
               for c in MOCKS.of_type("storage/bucket:Bucket")}
    stored = next(c.inputs for c in MOCKS.of_type("storage/bucketObject:BucketObject")
                  if c.inputs["name"] == naming.run_request_object(MODEL))
    content = stored["content"]
    request = json.loads(content["value"] if isinstance(content, dict) else content)
    (trigger,) = MOCKS.of_type("cloudbuild/trigger:Trigger")
    return Deployed(env, buckets, request, build_args(trigger.inputs["build"]["steps"]))


def build_args(steps: list[dict[str, Any]]) -> dict[str, str]:
    """The `--build-arg`s of the trigger's `docker build` step, substitutions applied."""
    (step,) = [s for s in steps if s["args"][:1] == ["build"]]
    assert step["args"][1:3] == ["--file", "docker/Dockerfile"] and step["args"][-1] == "."
    args = [_substitute(a) for a in step["args"]]
    return dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--build-arg")


def _substitute(text: str) -> str:
    """Cloud Build's substitution: `$NAME` / `${NAME}` its value, `$$` a literal `$`."""
    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(2)
        if name not in SUBSTITUTIONS:
            raise AssertionError(f"Cloud Build has no substitution ${name} for a push build")
        return SUBSTITUTIONS[name]
    return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)", sub, text)


def open_vertex(deployed: Deployed, root: Path, gcs: Path) -> None:
    """The environment's buckets as folders, its image, and Vertex on them."""
    from tests.cloudsim.sitehook import write_site
    from tests.cloudsim.vertex import Vertex

    for bucket in deployed.buckets.values():
        (gcs / bucket).mkdir(parents=True, exist_ok=True)
    folder = root / deployed.env
    image = Image.build(root / "project" / "docker" / "Dockerfile", root / "project",
                        folder / "image", deployed.build_args)
    deployed.state = folder / "vertex-models.json"
    site = write_site(folder / "site", "mlops_kit.adapters.gcp.registry",
                      "tests.cloudsim.gcp_clients:install", state=str(deployed.state),
                      gcs="/gcs")
    deployed.vertex = Vertex(gcs=gcs, image=image, sandbox=Sandbox(folder / "sandbox"),
                             job_env=site, location=f"projects/{ENVS[deployed.env]}/"
                             "locations/europe-west1")


def deliver(deployed: Deployed, gcs: Path, day: str, rows: int | None = None) -> str:
    """Put the day's CSV (its first `rows` rows) under `landing/<day>/`; its gs:// folder."""
    csv = project.day_csv(gcs / deployed.buckets["raw"] / "landing" / day / "customers.csv", day)
    if rows is not None:
        pd.read_csv(csv).head(rows).to_csv(csv, index=False)
    return f"gs://{deployed.buckets['raw']}/landing/{day}/"


def start(deployed: Deployed, source: str, day: str,
          request: dict[str, Any] | None = None) -> Any:
    """Submit the stored request with the run's two parameters, as a user starting a run."""
    body = copy.deepcopy(request or deployed.request)
    body["runtimeConfig"]["parameterValues"] = {"source_uri": source, "ingest_date": day}
    return deployed.vertex.create_pipeline_job(body)


def naive(request: dict[str, Any]) -> dict[str, Any]:
    """The request with the spec KFP compiles when the renderer sets no caching: every task
    cached (KFP's default) and the source imported once per URI (`reimport: false`)."""
    body = copy.deepcopy(request)
    spec = body["pipelineSpec"]
    for task in spec["root"]["dag"]["tasks"].values():
        task["cachingOptions"] = {"enableCache": True}
    for executor in spec["deploymentSpec"]["executors"].values():
        if "importer" in executor:
            executor["importer"]["reimport"] = False
    return body


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("vertex")
    config = write_harness_project(root / "project")
    gcs = root / "gcs"
    envs = {env: deploy(config, env) for env in ENVS}
    for deployed in envs.values():
        open_vertex(deployed, root, gcs)
    dev, gate, plain = envs["gcp_dev"], envs["gcp_gate"], envs["gcp_naive"]
    runs: dict[str, list[Any]] = {"gcp_dev": [], "gcp_gate": [], "gcp_naive": []}
    for day in project.DAYS:
        runs["gcp_dev"].append(start(dev, deliver(dev, gcs, day), day))
    last = project.DAYS[-1]   # the same day again, its delivery corrected under the same path
    runs["gcp_dev"].append(start(dev, deliver(dev, gcs, last, REDELIVERED), last))
    runs["gcp_gate"].append(start(gate, deliver(gate, gcs, project.DAYS[0]), project.DAYS[0]))
    for rows in (None, REDELIVERED):
        runs["gcp_naive"].append(start(plain, deliver(plain, gcs, last, rows), last,
                                       naive(plain.request)))
    yield World(config, gcs, envs, runs)


# --- helpers ---------------------------------------------------------------------------------


def lake(world: World, zone: str, env: str = "gcp_dev") -> dict[str, int]:
    """Rows per partition of a zone's lake table, from its bucket."""
    from mlops_kit.adapters.gcp import naming
    from mlops_kit.config import load_config

    table = naming.lake_table(load_config(world.config, env=env).config, zone)
    return project.partition_rows(world.gcs / world.envs[env].buckets[zone] / table)


def summary(task: Any) -> dict[str, Any]:
    """The step's summary: the JSON line the job entry prints last."""
    result: dict[str, Any] = json.loads(task.output.strip().splitlines()[-1])
    return result


def versions(world: World, env: str) -> list[Any]:
    from mlops_kit.adapters.gcp.registry import VertexRegistry
    from mlops_kit.config import load_config
    from tests.cloudsim.gcp_clients import FileModels, StandInStorage

    deployed = world.envs[env]
    assert deployed.state is not None
    loaded = load_config(world.config, env=env)
    return VertexRegistry(FileModels(deployed.state), StandInStorage(world.gcs),
                          loaded).versions(MODEL)


# --- what Vertex gets ------------------------------------------------------------------------


def test_the_stored_request_runs_on_the_spec_defaults(world: World) -> None:
    request = world.envs["gcp_dev"].request
    spec = request["pipelineSpec"]
    raw = world.envs["gcp_dev"].buckets["raw"]
    assert "parameterValues" not in request["runtimeConfig"]  # schedules run on the defaults
    assert request["runtimeConfig"]["gcsOutputDirectory"] == spec["defaultPipelineRoot"]
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert {k: v["defaultValue"] for k, v in inputs.items()} == {
        "source_uri": f"gs://{raw}/landing/", "ingest_date": ""}


def test_the_image_carries_the_commit_the_trigger_builds(world: World) -> None:
    for deployed in world.envs.values():
        env = deployed.vertex.image.env
        assert env["MLOPS_GIT_COMMIT"] == deployed.build_args["GIT_COMMIT"] == project.COMMIT
        assert deployed.build_args["EXTRAS"] == "vertex"


# --- the runs --------------------------------------------------------------------------------


def test_every_run_succeeds_and_every_task_ran(world: World) -> None:
    for run in world.runs["gcp_dev"] + world.runs["gcp_gate"]:
        assert run.state == "PIPELINE_STATE_SUCCEEDED", run.error
        assert {n: t.state for n, t in run.tasks.items()} == dict.fromkeys(
            ("importer", "ingest", "validate", "features", "train", "evaluate", "register"),
            "SUCCEEDED")


def test_the_csv_reaches_ingest_and_rows_reconcile_in_every_run(world: World) -> None:
    first, second, third = world.runs["gcp_dev"]
    for run, rows in ((first, project.ROWS), (second, project.ROWS), (third, REDELIVERED)):
        ingested, checked = summary(run.tasks["ingest"]), summary(run.tasks["validate"])
        assert ingested["rows"] == checked["rows_in"] == rows  # this run's delivery, only it
        assert checked["valid"] + checked["quarantined"] == rows and checked["quarantined"] > 0
    raw, curated, quarantine = (lake(world, z) for z in ("raw", "curated", "quarantine"))
    # raw is append-only: day 2's redelivery lands beside its first batch, nothing replaced;
    # curated and quarantine hold the day's latest batch, split
    assert raw == {project.DAYS[0]: project.ROWS, project.DAYS[1]: project.ROWS + REDELIVERED}
    latest = {project.DAYS[0]: project.ROWS, project.DAYS[1]: REDELIVERED}
    for day in project.DAYS:
        assert curated[day] + quarantine[day] == latest[day], (day, curated, quarantine)


def test_each_task_reads_only_its_own_runs_artifacts(world: World) -> None:
    from tests.cloudsim.vertex import PROJECT_NUMBER, fuse_path

    for run in world.runs["gcp_dev"]:
        own = f"{run.root}/{PROJECT_NUMBER}/{run.name}/"
        for name, task in run.tasks.items():
            for channel, artifact in task.inputs.items():
                expected = run.parameters["source_uri"] if channel == "source" else own
                assert artifact.uri.startswith(expected), (run.name, name, channel)
            if name != "importer":
                assert all(a.uri.startswith(own) for a in task.outputs.values()), name
        paths = [a.split("=", 2)[2] for t in run.tasks.values() for a in t.argv
                 if a.startswith("--input=")]   # what the jobs open: no lake table
        assert paths and all(p.startswith(fuse_path(own)) or p == fuse_path(
            run.parameters.get("source_uri", "")) for p in paths), paths
        day = run.parameters["ingest_date"]
        assert f"--param=ingest_date={day}" in run.tasks["ingest"].argv
        curated = run.tasks["validate"].outputs["curated"]
        folder = world.envs["gcp_dev"].vertex.host_path(curated.uri)
        assert list(project.partition_rows(folder)) == [run.parameters["ingest_date"]]


def test_a_passed_gate_registers_one_version_per_run_with_full_lineage(world: World) -> None:
    found = versions(world, "gcp_dev")
    runs = world.runs["gcp_dev"]
    assert [v.version for v in found] == [1, 2, 3]
    for version, run in zip(found, runs, strict=True):
        assert project.missing_lineage(version.lineage) == []
        assert version.lineage["pipeline_run"] == run.name
        assert version.lineage["ingest_date"] == run.parameters["ingest_date"]
        assert summary(run.tasks["register"])["version"] == version.version
    assert len({v.lineage["data_version"] for v in found}) == 3


def test_a_failed_gate_registers_nothing(world: World) -> None:
    (run,) = world.runs["gcp_gate"]
    assert summary(run.tasks["evaluate"]).get("passed") is False
    assert summary(run.tasks["register"]) == {"registered": False}
    assert versions(world, "gcp_gate") == []


def test_a_cached_step_never_reuses_results_of_other_data(world: World) -> None:
    second, third = world.runs["gcp_dev"][1:]
    assert second.parameters == third.parameters   # same request, a new delivery
    cached = {n for n, t in third.tasks.items() if t.cache_key}
    assert cached == {"train"}
    assert not any(t.state == "SKIPPED" for run in world.runs["gcp_dev"]
                   for t in run.tasks.values())
    assert third.tasks["train"].cache_key != second.tasks["train"].cache_key


def test_the_harness_sees_kfp_default_caching_reuse_stale_data(world: World) -> None:
    """The spec without our caching rule, on the same two deliveries: Vertex replays the first
    run, so the corrected delivery never lands. This is what the test above guards against."""
    first, second = world.runs["gcp_naive"]
    assert first.state == second.state == "PIPELINE_STATE_SUCCEEDED", first.error + second.error
    assert {n: t.state for n, t in second.tasks.items()} == {
        "importer": "SUCCEEDED", **dict.fromkeys(
            ("ingest", "validate", "features", "train", "evaluate"), "SKIPPED"),
        "register": "SUCCEEDED"}   # its run id (the job name) is new: it ran, on the old model
    register = summary(second.tasks["register"])  # the old model again: no new version
    assert (register["registered"], register["already_version"]) == (False, 1), register
    assert lake(world, "raw", "gcp_naive") == {project.DAYS[1]: project.ROWS}  # not 1,500
