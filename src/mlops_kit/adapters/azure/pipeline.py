"""The Azure ML pipeline job of a model, rendered from `pipelines/training.yaml`.

Pure functions (no Azure SDK): `pipeline_job` is the CLI v2 YAML (`az ml job create -f`), and
`component` / `rest_jobs` are the same steps in the REST form a `Schedule` resource carries.
Each step is a command component running `python -m mlops_kit.runtime.job <name>` in the project
image with `registry.backend=azureml`; outputs published to a lake zone are written to that
zone's datastore.
"""

from __future__ import annotations

from typing import Any

from mlops_kit.adapters.azure import naming
from mlops_kit.config import LoadedConfig
from mlops_kit.pipeline import EXTERNAL, Pipeline, Step

SCHEMA = "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json"
PRODUCTION_INPUT = "production_model"
BACKEND = "azureml"  # the steps register to, and fetch production from, the Azure ML registry


def component_name(project: str, model: str, step: str) -> str:
    """The component of a model's step: lower-case letters, digits and '_'."""
    return f"{project}_{model}_{step}".replace("-", "_")


def command(step: Step, loaded: LoadedConfig, model: str) -> str:
    """The step's job command, with Azure ML's `${{inputs.x}}` / `${{outputs.x}}` bindings."""
    image = loaded.config.image
    parts = [f"python -m mlops_kit.runtime.job {step.name}", f"--config {image.config_path}",
             f"--env {loaded.env}", f"--model {model}", f"--set registry.backend={BACKEND}"]
    for channel in step.inputs:
        optional = channel in step.spec.optional_inputs
        arg = f"--input {channel}=${{{{inputs.{channel}}}}}"
        parts.append(f"$[[{arg}]]" if optional else arg)
    parts += [f"--output {ch}=${{{{outputs.{ch}}}}}" for ch in step.outputs]
    return " ".join(parts)


def component(step: Step, loaded: LoadedConfig, model: str, environment: Any) -> dict[str, Any]:
    """A command component spec; `environment` is `{"image": uri}` or an environment asset id."""
    inputs = {ch: {"type": "uri_folder", "optional": True} if ch in step.spec.optional_inputs
              else {"type": "uri_folder"} for ch in step.inputs}
    spec: dict[str, Any] = {
        "name": component_name(loaded.config.project, model, step.name),
        "display_name": step.name,
        "type": "command",
        "command": command(step, loaded, model),
        "environment": environment,
        "is_deterministic": step.cache,
        "outputs": {ch: {"type": "uri_folder"} for ch in step.outputs},
    }
    if inputs:
        spec["inputs"] = inputs
    return spec


def bindings(step: Step, production: bool) -> dict[str, str]:
    """Each input channel -> the expression of the output (or pipeline input) feeding it.

    `registry.production` is the pipeline input `production_model` when there is a production
    model (`production`), else left unbound: the step's channel is optional.
    """
    out = {}
    for channel, source in step.inputs.items():
        if source in EXTERNAL:
            if production:
                out[channel] = f"${{{{parent.inputs.{PRODUCTION_INPUT}}}}}"
        else:
            src_step, _, src_out = source.partition(".")
            out[channel] = f"${{{{parent.jobs.{src_step}.outputs.{src_out}}}}}"
    return out


def lake_outputs(step: Step, loaded: LoadedConfig) -> dict[str, str]:
    """Outputs published to a lake zone -> their datastore URI."""
    return {name: f"azureml://datastores/{naming.datastore(out.publish)}/paths/"
                  f"{naming.lake_table(loaded.config, out.publish)}/"
            for name, out in step.outputs.items() if out.publish}


def pipeline_job(loaded: LoadedConfig, pipeline: Pipeline, model: str, compute: str,
                 image: str, production: str | None = None) -> dict[str, Any]:
    """The CLI v2 pipeline job: inline command components wired as the DAG says.

    `production` is the production model's asset URI, fed to `registry.production` inputs.
    """
    jobs: dict[str, Any] = {}
    for step in pipeline.steps:
        lake = lake_outputs(step, loaded)
        job: dict[str, Any] = {
            "type": "command",
            "component": component(step, loaded, model, {"image": image}),
            "outputs": {ch: ({"type": "uri_folder", "path": lake[ch], "mode": "rw_mount"}
                             if ch in lake else {"type": "uri_folder"}) for ch in step.outputs},
        }
        if step.inputs:
            job["inputs"] = bindings(step, production is not None)
        jobs[step.name] = job
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "type": "pipeline",
        "display_name": f"{pipeline.name}-{model}",
        "experiment_name": f"{loaded.config.project}-{model}",
        "settings": {"default_compute": f"azureml:{compute}", "continue_on_step_failure": False},
        "jobs": jobs,
    }
    if production:
        spec["inputs"] = {PRODUCTION_INPUT: {"type": "custom_model", "path": production}}
    return spec


def rest_jobs(loaded: LoadedConfig, pipeline: Pipeline, component_ids: dict[str, str],
              production: bool = False) -> dict[str, Any]:
    """The pipeline's jobs in the REST form (`PipelineJob.jobs`) that a Schedule submits."""
    jobs: dict[str, Any] = {}
    for step in pipeline.steps:
        lake = lake_outputs(step, loaded)
        outputs: dict[str, Any] = {}
        for ch in step.outputs:
            outputs[ch] = {"job_output_type": "uri_folder"}
            if ch in lake:
                outputs[ch].update(uri=lake[ch], mode="ReadWriteMount")
        job: dict[str, Any] = {"name": step.name, "type": "command",
                               "componentId": component_ids[step.name], "outputs": outputs}
        if step.inputs:
            job["inputs"] = {ch: {"job_input_type": "literal", "value": value}
                             for ch, value in bindings(step, production).items()}
        jobs[step.name] = job
    return jobs
