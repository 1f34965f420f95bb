"""The Azure ML pipeline job of a model, rendered from the pipeline DAG.

Pure functions (no Azure SDK): `pipeline_job` is the CLI v2 YAML (`az ml job create -f`), and
`component` / `rest_jobs` / `rest_inputs` are the same job in the REST form a `Schedule`
resource carries. Each step is a command component running
`python -m mlops_kit.runtime.job <name>` in the project image with `registry.backend=azureml`.

Data passing: every output is a default job output (a folder of its own per step job, under
`azureml/<job name>/` in the workspace's default datastore) and the next steps bind THAT, so a
run reads only what this run produced. An output the DAG publishes to a lake zone is also
written into its lake table by the job entry (`--publish OUTPUT=<table folder>`), through an
extra `rw_mount` output `lake_<zone>` of the zone's datastore. The pipeline takes the source
folder (`source`, the raw datastore's `landing/` by default, bound to ingest's `source`
channel) and the ingest date (`ingest_date`; empty: the day of the run) as inputs; register
records the pipeline job's name (`AZUREML_ROOT_RUN_ID`, set by Azure ML in every step job) as
`pipeline_run`. Only steps that `Step.reusable` allows are `is_deterministic`: Azure ML reuses
those by their inputs' paths, whatever the content.
"""

from __future__ import annotations

from typing import Any

from mlops_kit.adapters.azure import naming
from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import FileSource
from mlops_kit.pipeline import EXTERNAL, Pipeline, Step

SCHEMA = "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json"
PRODUCTION_INPUT = "production_model"
SOURCE_INPUT, DATE_INPUT = "source", "ingest_date"
LANDING = "landing/"  # where new source files arrive, in the raw zone's datastore
# The pipeline job's name: Azure ML sets it in each step job's environment (the command runs
# in a shell, which expands it); `${{name}}` would be the step job's own name.
RUN_ID = "$AZUREML_ROOT_RUN_ID"
BACKEND = "azureml"  # the steps register to, and fetch production from, the Azure ML registry


def component_name(project: str, model: str, step: str) -> str:
    """The component of a model's step: lower-case letters, digits and '_'."""
    return f"{project}_{model}_{step}".replace("-", "_")


def lake_output(zone: str) -> str:
    """The extra output through which a step writes into a lake zone."""
    return f"lake_{zone}"


def zone_uri(zone: str) -> str:
    """A lake zone's datastore (its whole container: tables are folders at its root)."""
    return f"azureml://datastores/{naming.datastore(zone)}/paths/"


def source_uri() -> str:
    """The default source folder: `landing/` in the raw zone's datastore."""
    return f"{zone_uri('raw')}{LANDING}"


def takes_source(step: Step, loaded: LoadedConfig) -> bool:
    """A step starting the DAG gets the source folder on its optional `source` channel when
    the config reads files (a generated source needs none)."""
    return (not step.upstream and SOURCE_INPUT in step.spec.optional_inputs
            and SOURCE_INPUT not in step.inputs
            and isinstance(loaded.config.data.source, FileSource))


def data_inputs(step: Step, loaded: LoadedConfig) -> list[str]:
    """The step's folder inputs: its DAG channels, plus `source` for a file-reading source."""
    return [*step.inputs, *([SOURCE_INPUT] if takes_source(step, loaded) else [])]


def lake_zones(step: Step) -> list[str]:
    """The lake zones the step publishes to, once each, in output order."""
    return list(dict.fromkeys(o.publish for o in step.outputs.values() if o.publish))


def command(step: Step, loaded: LoadedConfig, model: str) -> str:
    """The step's job command, with Azure ML's `${{inputs.x}}` / `${{outputs.x}}` bindings
    (`$[[...]]`: dropped when the optional input is unbound)."""
    image = loaded.config.image
    parts = [f"python -m mlops_kit.runtime.job {step.name}", f"--config {image.config_path}",
             f"--env {loaded.env}", f"--model {model}", f"--set registry.backend={BACKEND}"]
    for channel in data_inputs(step, loaded):
        optional = channel in step.spec.optional_inputs
        arg = f"--input {channel}=${{{{inputs.{channel}}}}}"
        parts.append(f"$[[{arg}]]" if optional else arg)
    parts += [f"--output {ch}=${{{{outputs.{ch}}}}}" for ch in step.outputs]
    for name, out in step.outputs.items():
        if out.publish:
            table = naming.lake_table(loaded.config, out.publish)
            parts.append(f"--publish {name}=${{{{outputs.{lake_output(out.publish)}}}}}/{table}")
    if not step.upstream:  # a source step ingests the date the run names (none: today)
        parts.append(f"$[[--param {DATE_INPUT}=${{{{inputs.{DATE_INPUT}}}}}]]")
    if step.name == "register":
        parts.append(f"--param run_id={RUN_ID}")
    return " ".join(parts)


def component(step: Step, loaded: LoadedConfig, model: str, environment: Any) -> dict[str, Any]:
    """A command component spec; `environment` is `{"image": uri}` or an environment asset id."""
    inputs: dict[str, Any] = {
        ch: {"type": "uri_folder", "optional": True} if ch in step.spec.optional_inputs
        else {"type": "uri_folder"} for ch in data_inputs(step, loaded)}
    if not step.upstream:
        inputs[DATE_INPUT] = {"type": "string", "optional": True}
    outputs = {ch: {"type": "uri_folder"} for ch in step.outputs}
    outputs.update({lake_output(z): {"type": "uri_folder"} for z in lake_zones(step)})
    spec: dict[str, Any] = {
        "name": component_name(loaded.config.project, model, step.name),
        "display_name": step.name,
        "type": "command",
        "command": command(step, loaded, model),
        "environment": environment,
        "is_deterministic": step.reusable,
        "outputs": outputs,
    }
    if inputs:
        spec["inputs"] = inputs
    return spec


def bindings(step: Step, loaded: LoadedConfig, production: bool) -> dict[str, str]:
    """Each input -> the expression of the output (or pipeline input) feeding it.

    `registry.production` is the pipeline input `production_model` when there is a production
    model (`production`), else left unbound: the step's channel is optional and the job entry
    fetches the production model itself.
    """
    out = {}
    for channel, source in step.inputs.items():
        if source in EXTERNAL:
            if production:
                out[channel] = f"${{{{parent.inputs.{PRODUCTION_INPUT}}}}}"
        else:
            src_step, _, src_out = source.partition(".")
            out[channel] = f"${{{{parent.jobs.{src_step}.outputs.{src_out}}}}}"
    if takes_source(step, loaded):
        out[SOURCE_INPUT] = f"${{{{parent.inputs.{SOURCE_INPUT}}}}}"
    if not step.upstream:
        out[DATE_INPUT] = f"${{{{parent.inputs.{DATE_INPUT}}}}}"
    return out


def uses_source(loaded: LoadedConfig, pipeline: Pipeline) -> bool:
    return any(takes_source(s, loaded) for s in pipeline.steps)


def pipeline_job(loaded: LoadedConfig, pipeline: Pipeline, model: str, compute: str,
                 image: str, production: str | None = None) -> dict[str, Any]:
    """The CLI v2 pipeline job: inline command components wired as the DAG says.

    `production` is the production model's asset URI, fed to `registry.production` inputs.
    Run inputs: `source` (a folder) and `ingest_date` (`--set inputs.ingest_date=YYYY-MM-DD`).
    """
    jobs: dict[str, Any] = {}
    for step in pipeline.steps:
        outputs: dict[str, Any] = {ch: {"type": "uri_folder"} for ch in step.outputs}
        outputs.update({lake_output(z): {"type": "uri_folder", "path": zone_uri(z),
                                         "mode": "rw_mount"} for z in lake_zones(step)})
        job: dict[str, Any] = {"type": "command",
                               "component": component(step, loaded, model, {"image": image}),
                               "outputs": outputs}
        inputs = bindings(step, loaded, production is not None)
        if inputs:
            job["inputs"] = inputs
        jobs[step.name] = job
    spec_inputs: dict[str, Any] = {DATE_INPUT: ""}
    if uses_source(loaded, pipeline):
        spec_inputs[SOURCE_INPUT] = {"type": "uri_folder", "path": source_uri(),
                                     "mode": "ro_mount"}
    if production:
        spec_inputs[PRODUCTION_INPUT] = {"type": "custom_model", "path": production}
    return {
        "$schema": SCHEMA,
        "type": "pipeline",
        "display_name": f"{pipeline.name}-{model}",
        "experiment_name": f"{loaded.config.project}-{model}",
        "settings": {"default_compute": f"azureml:{compute}", "continue_on_step_failure": False},
        "inputs": spec_inputs,
        "jobs": jobs,
    }


def rest_jobs(loaded: LoadedConfig, pipeline: Pipeline, component_ids: dict[str, str],
              production: bool = False) -> dict[str, Any]:
    """The pipeline's jobs in the REST form (`PipelineJob.jobs`) that a Schedule submits."""
    jobs: dict[str, Any] = {}
    for step in pipeline.steps:
        outputs: dict[str, Any] = {ch: {"job_output_type": "uri_folder"} for ch in step.outputs}
        outputs.update({lake_output(z): {"job_output_type": "uri_folder", "uri": zone_uri(z),
                                         "mode": "ReadWriteMount"} for z in lake_zones(step)})
        job: dict[str, Any] = {"name": step.name, "type": "command",
                               "componentId": component_ids[step.name], "outputs": outputs}
        inputs = bindings(step, loaded, production)
        if inputs:
            job["inputs"] = {ch: {"job_input_type": "literal", "value": value}
                             for ch, value in inputs.items()}
        jobs[step.name] = job
    return jobs


def rest_inputs(loaded: LoadedConfig, pipeline: Pipeline,
                production: str | None = None) -> dict[str, Any]:
    """The pipeline job's inputs in the REST form: the source folder and, when there is one,
    the production model. The empty `ingest_date` is left out, as azure-ai-ml leaves it out of
    the CLI job: ingest's date input is then unbound and the run ingests its own day."""
    out: dict[str, Any] = {}
    if uses_source(loaded, pipeline):
        out[SOURCE_INPUT] = {"job_input_type": "uri_folder", "uri": source_uri(),
                             "mode": "ReadOnlyMount"}
    if production:
        out[PRODUCTION_INPUT] = {"job_input_type": "custom_model", "uri": production}
    return out
