"""The Azure ML pipeline job, run as Azure ML would run it (tests/cloudsim/azureml.py).

Two runs on two ingest dates, each a new CSV delivered to the same landing folder: run 1 is the
job the GitHub workflow renders and submits (its own command line), run 2 the job with the
version run 1 registered pinned as `production_model` (as the Schedule and the drift monitor
render it). A second project whose gate cannot pass shows that a failed gate registers nothing.
The registry is the real `AzureMLRegistry` on the stand-in client of `azureml_registry` (files
and state under the workspace folder), which the harness puts into each job through `sitehook`.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlops_kit.adapters.azure import naming
from mlops_kit.adapters.azure.pipeline import pipeline_job, source_uri, zone_uri
from mlops_kit.adapters.azure.registry import AzureMLRegistry
from mlops_kit.config import LoadedConfig, load_config
from mlops_kit.fileio import digest_dir
from mlops_kit.pipeline import load_pipeline
from mlops_kit.registry.base import model_digest
from tests.cloudsim.azureml import HarnessError, PipelineRun, Workspace, ci_image, substitute
from tests.cloudsim.container import VENV_BIN, Image, namespaces_available
from tests.cloudsim.project import (
    DAYS,
    ROWS,
    day_csv,
    missing_lineage,
    partition_rows,
    write_project,
)
from tests.conftest import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # one module fixture runs every pipeline run
    pytest.mark.skipif(not namespaces_available(), reason="needs user and mount namespaces"),
    pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning"),
]
ENV, MODEL = "azure_dev", "churn-classifier"
LANDING_FILE = "customers.csv"


@dataclass
class Cloud:
    """A project, its image built as the workflow builds it, and a workspace to run in."""

    project: Path
    loaded: LoadedConfig
    workflow: dict[str, Any]
    build_args: dict[str, str]
    workspace: Workspace
    runs: list[PipelineRun] = field(default_factory=list)
    registered: list[int] = field(default_factory=list)   # versions after each run
    delivered: dict[str, int] = field(default_factory=dict)   # CSV rows per day
    commit_added: bool = False     # GIT_COMMIT passed by the harness, not by the workflow

    @property
    def registry(self) -> AzureMLRegistry:
        name = naming.registry(self.loaded.config.project, ENV)
        return AzureMLRegistry(self.workspace.registry(name), name, self.loaded.config.project)

    def lake(self, zone: str) -> Path:
        return self.workspace.path(zone_uri(zone)) / naming.lake_table(self.loaded.config, zone)

    def folder(self, run: PipelineRun, step: str, output: str) -> Path:
        return self.workspace.path(run.output(step, output))

    def deliver(self, day: str) -> None:
        """The day's CSV, dropped where the pipeline's `source` points by default (replacing
        the previous day's: same path, new content)."""
        path = day_csv(self.workspace.path(source_uri()) / LANDING_FILE, day)
        self.delivered[day] = len(pd.read_csv(path))

    def submit(self, spec: dict[str, Any], day: str, **kw: Any) -> PipelineRun:
        run = self.workspace.submit(spec, inputs={"ingest_date": day}, **kw)
        self.runs.append(run)
        self.registered.append(len(self.registry.versions(MODEL)))
        return run


def cloud(folder: Path, changes: dict[str, Any] | None = None) -> Cloud:
    from mlops_pulumi.azure import cicd

    config = write_project(folder / "project", changes)
    for name in ("pulumi", ".venv"):   # the checkout's Pulumi program; what `make install` made
        (folder / "project" / name).symlink_to(ROOT / name)
    loaded = load_config(config, env=ENV, model=MODEL)
    workflow = cicd.workflow(config)
    uri, args, added = ci_image(workflow)
    assert uri == naming.image(loaded)
    image = Image.build(config.parent / "docker" / "Dockerfile", config.parent,
                        folder / "image", args)
    return Cloud(config.parent, loaded, workflow, args,
                 Workspace(folder / "workspace", image, uri), commit_added=added)


def ci_job(c: Cloud) -> dict[str, Any]:
    """The job the workflow's train step writes (its own command, in the repository root)
    and then submits with `az ml job create -f job.yml`."""
    step = next(s for s in c.workflow["jobs"]["train"]["steps"]
                if s.get("name") == f"train {MODEL}")
    render, submit = step["run"].splitlines()
    assert submit.startswith("az ml job create -f job.yml ")
    env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(c.project),
           **c.workflow["jobs"]["train"]["env"]}
    subprocess.run(["bash", "-c", render], cwd=c.project, env=env, check=True, timeout=300)
    spec: dict[str, Any] = yaml.safe_load((c.project / "job.yml").read_text())
    return spec


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Cloud:
    c = cloud(tmp_path_factory.mktemp("azureml"))
    c.deliver(DAYS[0])
    c.submit(ci_job(c), DAYS[0])
    first = c.registry.versions(MODEL)
    assert len(first) == 1, "run 1 (no production model, min_value 0.6) should register"
    pinned = naming.model_uri(c.registry.registry, c.loaded.config.project, MODEL, "1")
    c.deliver(DAYS[1])
    spec = pipeline_job(c.loaded, load_pipeline(c.loaded), MODEL, naming.CLUSTER,
                        naming.image(c.loaded), production=pinned)
    c.submit(spec, DAYS[1])
    for run in c.runs:
        print(run.name, {j.step: j.seconds for j in run.jobs.values()})
    return c


@pytest.fixture(scope="module")
def failed_gate(tmp_path_factory: pytest.TempPathFactory) -> Cloud:
    c = cloud(tmp_path_factory.mktemp("azureml-gate"), {"quality_gate": {"min_value": 0.999}})
    c.deliver(DAYS[0])
    c.submit(ci_job(c), DAYS[0])
    return c


def test_the_csv_source_reaches_ingest(two_runs: Cloud) -> None:
    raw = partition_rows(two_runs.lake("raw"))
    assert two_runs.delivered == {DAYS[0]: ROWS, DAYS[1]: ROWS}
    assert raw == two_runs.delivered, f"raw partitions after two runs: {raw}"
    for run in two_runs.runs:
        assert run.jobs["ingest"].inputs["source"].value == source_uri()


def test_rows_reconcile_and_no_row_is_read_twice(two_runs: Cloud) -> None:
    raw, curated, quarantine = (partition_rows(two_runs.lake(z))
                                for z in ("raw", "curated", "quarantine"))
    assert set(raw) == set(curated) == set(quarantine) == set(DAYS), (raw, curated, quarantine)
    for day in DAYS:
        assert raw[day] == curated[day] + quarantine[day], (day, raw, curated, quarantine)
        assert 0 < quarantine[day] < ROWS * 0.05
    for run, day in zip(two_runs.runs, DAYS, strict=True):
        seen = json.loads((two_runs.folder(run, "validate", "profile")
                           / "validation.json").read_text())
        assert seen["rows_in"] == ROWS, f"validate of {day} read {seen['rows_in']} rows"
        read = partition_rows(two_runs.folder(run, "validate", "curated"))
        assert read == {day: curated[day]}, f"run of {day}: validate's curated output {read}"


def test_a_passed_gate_registers_exactly_one_version(two_runs: Cloud) -> None:
    before = 0
    for run, after in zip(two_runs.runs, two_runs.registered, strict=True):
        evaluation = json.loads((two_runs.folder(run, "evaluate", "evaluation")
                                 / "evaluation.json").read_text())
        registration = json.loads((two_runs.folder(run, "register", "registration")
                                   / "registration.json").read_text())
        assert after - before == (1 if evaluation["passed"] else 0), (run.name, registration)
        before = after


def test_the_registered_lineage_is_complete(two_runs: Cloud) -> None:
    first = two_runs.registry.versions(MODEL)[0]
    run = two_runs.runs[0]
    missing = missing_lineage(first.lineage, two_runs.build_args["GIT_COMMIT"])
    assert missing == [], f"version 1 lacks {missing}: {first.lineage}"
    assert first.lineage["pipeline_run"] == run.name
    assert first.lineage["ingest_date"] == DAYS[0]
    assert first.lineage["model_digest"] == model_digest(
        two_runs.folder(run, "train", "model"))["digest"]
    dataset = json.loads((two_runs.folder(run, "ingest", "raw") / "_dataset.json").read_text())
    assert first.lineage["data_version"] == dataset["data_version"]


def test_the_pinned_production_model_is_that_versions_files(two_runs: Cloud) -> None:
    run = two_runs.runs[1]
    bound = run.jobs["evaluate"].inputs["production_model"]
    v1 = two_runs.registry.get(MODEL, 1)
    assert bound.value == v1.artifact_uri
    assert model_digest(two_runs.workspace.path(bound.value))["digest"] == \
        v1.lineage["model_digest"]
    evaluation = json.loads((two_runs.folder(run, "evaluate", "evaluation")
                             / "evaluation.json").read_text())
    assert evaluation["production_metrics"] is not None


def test_no_step_reuses_results_computed_from_different_data(two_runs: Cloud) -> None:
    for run in two_runs.runs:
        assert run.stale == [], f"{run.name} reused {run.stale} computed from other data"
        assert [j.step for j in run.jobs.values() if j.reused] == []
    spec = ci_job(two_runs)
    deterministic = [n for n, j in spec["jobs"].items() if j["component"]["is_deterministic"]]
    assert deterministic == ["train"]


def test_reuse_is_by_path_so_a_deterministic_source_step_would_reuse_day_one(
        two_runs: Cloud, tmp_path: Path) -> None:
    """Azure ML's reuse as the harness emulates it: the landing folder's path is the same on
    both days, so a deterministic ingest (what `step.cache` made it before) is reused on day 2
    and its day-1 rows are all the run gets. The rendered ingest is not deterministic."""
    base = two_runs.workspace
    ws = Workspace(tmp_path / "workspace", base.image, base.image_uri)
    spec = ci_job(two_runs)
    spec["jobs"] = {"ingest": spec["jobs"]["ingest"]}
    forced = json.loads(json.dumps(spec))
    forced["jobs"]["ingest"]["component"]["is_deterministic"] = True
    landing = ws.path(source_uri()) / LANDING_FILE
    day_csv(landing, DAYS[0])
    first = ws.submit(forced)       # scheduled runs: no ingest_date, the day of the run
    day_csv(landing, DAYS[1])
    again = ws.submit(forced)
    assert again.jobs["ingest"].reused == first.jobs["ingest"].name
    assert again.stale == ["ingest"]
    rendered = ws.submit(spec)
    assert rendered.jobs["ingest"].reused is None and rendered.stale == []
    assert digest_dir(ws.path(rendered.output("ingest", "raw")))["digest"] != \
        digest_dir(ws.path(first.output("ingest", "raw")))["digest"]


def test_a_failed_gate_registers_nothing(failed_gate: Cloud) -> None:
    run = failed_gate.runs[0]
    evaluation = json.loads((failed_gate.folder(run, "evaluate", "evaluation")
                             / "evaluation.json").read_text())
    registration = json.loads((failed_gate.folder(run, "register", "registration")
                               / "registration.json").read_text())
    assert evaluation["passed"] is False and registration["registered"] is False
    assert failed_gate.registry.versions(MODEL) == []
    assert failed_gate.registered == [0]


def test_the_image_is_built_with_the_workflows_build_args(two_runs: Cloud) -> None:
    assert two_runs.build_args["EXTRAS"] == "azureml"
    assert not two_runs.commit_added, "the workflow's image build passes no GIT_COMMIT"
    assert two_runs.workspace.image.env["MLOPS_GIT_COMMIT"] == two_runs.build_args["GIT_COMMIT"]
    assert two_runs.workspace.image.path(two_runs.loaded.config.image.config_path).is_file()


def test_optional_parts_drop_with_their_unbound_inputs() -> None:
    command = "run $[[--a ${{inputs.a}}]] $[[--b=${{inputs.b}}]] --o ${{outputs.o}}"
    assert substitute(command, {"a": "/in/a"}, {"o": "/out/o"}) == "run --a /in/a --o /out/o"
    with pytest.raises(HarnessError, match=r"inputs\.c.*not bound"):
        substitute("run ${{inputs.c}}", {}, {})


def test_a_job_that_writes_into_a_read_only_input_fails(two_runs: Cloud, tmp_path: Path) -> None:
    base = two_runs.workspace
    ws = Workspace(tmp_path / "workspace", base.image, base.image_uri)
    (ws.path(source_uri()) / "x.csv").parent.mkdir(parents=True)
    (ws.path(source_uri()) / "x.csv").write_text("a\n1\n")
    spec = {"type": "pipeline", "display_name": "ro", "settings": {"default_compute": "azureml:c"},
            "inputs": {"source": {"type": "uri_folder", "path": source_uri(), "mode": "ro_mount"}},
            "jobs": {"touch": {"type": "command", "inputs": {"s": "${{parent.inputs.source}}"},
                               "component": {"type": "command", "name": "touch",
                                             "command": "touch ${{inputs.s}}/new",
                                             "environment": {"image": base.image_uri},
                                             "inputs": {"s": {"type": "uri_folder"}}}}}}
    run = ws.submit(spec, check=False)
    assert run.jobs["touch"].returncode == 1
    assert "read-only" in run.jobs["touch"].stderr

