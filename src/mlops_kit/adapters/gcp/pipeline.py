"""The Vertex AI Pipelines (KFP v2) spec of a model, compiled from `pipelines/training.yaml`.

Each step is a KFP container component running
`python -m mlops_kit.runtime.job <step> --config <image path> --env <env> --model <model>
--set registry.backend=vertex` in the project image, so Vertex runs the same step code as
`mlops-kit run` and registers to the Vertex Model Registry. Outputs passed between steps are
KFP artifacts under the pipeline root; an output published to a lake zone is written to that
zone's bucket instead (`/gcs/<bucket>/<table>`, Vertex's Cloud Storage FUSE mount), read
from there by the steps that consume it, which then run `.after()` the producer. Inputs wired to
`registry.production` are not bound: `runtime.job` fetches the production model itself.
Vertex caches only steps that read and write artifacts alone (`cacheable`).
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kfp import compiler, dsl

from mlops_kit.adapters.gcp import naming
from mlops_kit.adapters.gcp.machines import machine_resources
from mlops_kit.config import LoadedConfig
from mlops_kit.pipeline import EXTERNAL, Pipeline, Step

RUNNER = ["python", "-m", "mlops_kit.runtime.job"]
BACKEND = "vertex"  # the steps register to, and fetch production from, the Vertex registry


def lake_path(loaded: LoadedConfig, zone: str) -> str:
    """A zone's table folder as the job sees it (Cloud Storage FUSE)."""
    table = naming.lake_table(loaded.config, zone)
    return f"/gcs/{naming.bucket(loaded, zone)}/{table}"


def pipeline_root(loaded: LoadedConfig, model: str) -> str:
    """Where Vertex keeps a model's runs' artifacts."""
    return f"gs://{naming.bucket(loaded, 'pipelines')}/runs/{model}"


def artifact_inputs(step: Step, pipeline: Pipeline) -> dict[str, tuple[str, str]]:
    """Input channel -> (producer step, output) for inputs passed as KFP artifacts."""
    out = {}
    for channel, source in step.inputs.items():
        if source in EXTERNAL:
            continue
        src_step, _, src_out = source.partition(".")
        if pipeline.step(src_step).outputs[src_out].publish is None:
            out[channel] = (src_step, src_out)
    return out


def cacheable(step: Step, pipeline: Pipeline) -> bool:
    """Vertex may reuse a step's result only if everything it reads and writes is an artifact:
    a cache hit would skip writing the lake, or miss new lake data or a new production model."""
    return (step.cache and not any(o.publish for o in step.outputs.values())
            and set(artifact_inputs(step, pipeline)) == set(step.inputs))


def _component(loaded: LoadedConfig, pipeline: Pipeline, step: Step, model: str) -> Any:
    """The step as a KFP container component with its artifact inputs and outputs."""
    ins = list(artifact_inputs(step, pipeline))
    outs = [ch for ch, out in step.outputs.items() if out.publish is None]
    fixed = [f"--config={loaded.config.image.config_path}", f"--env={loaded.env}",
             f"--model={model}", f"--set=registry.backend={BACKEND}"]
    for channel, source in step.inputs.items():
        if channel not in ins and source not in EXTERNAL:
            src_step, _, src_out = source.partition(".")
            zone = pipeline.step(src_step).outputs[src_out].publish
            fixed.append(f"--input={channel}={lake_path(loaded, str(zone))}")
    fixed += [f"--output={ch}={lake_path(loaded, str(out.publish))}"
              for ch, out in step.outputs.items() if out.publish]

    def body(*values: Any) -> dsl.ContainerSpec:
        bound = dict(zip(ins + outs, values, strict=True))
        args = [step.name, *fixed]
        args += [f"--input={ch}={bound[ch].path}" for ch in ins]
        args += [f"--output={ch}={bound[ch].path}" for ch in outs]
        return dsl.ContainerSpec(image=naming.image(loaded), command=RUNNER, args=args)

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(c, kind, annotation=dsl.Input[dsl.Artifact]) for c in ins]
    params += [inspect.Parameter(c, kind, annotation=dsl.Output[dsl.Artifact]) for c in outs]
    body.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    body.__annotations__ = {p.name: p.annotation for p in params}
    body.__name__ = step.name.replace("-", "_")
    return dsl.container_component(body)


def _dag(loaded: LoadedConfig, pipeline: Pipeline, model: str) -> Callable[[], None]:
    """The pipeline function: one task per step, wired as the DAG says."""
    cpus, memory = machine_resources(loaded.config.gcp.training_machine_type)
    components = {s.name: _component(loaded, pipeline, s, model) for s in pipeline.steps}

    def dag() -> None:
        tasks: dict[str, Any] = {}
        for step in pipeline.steps:
            wired = artifact_inputs(step, pipeline)
            task = components[step.name](**{ch: tasks[src].outputs[out]
                                            for ch, (src, out) in wired.items()})
            task.set_display_name(step.name).set_caching_options(cacheable(step, pipeline))
            for upstream in sorted(step.upstream - {src for src, _ in wired.values()}):
                task.after(tasks[upstream])
            if step.spec.kind == "training":
                task.set_cpu_limit(str(cpus)).set_memory_limit(f"{memory:g}G")
            tasks[step.name] = task

    dag.__annotations__ = {}  # KFP reads a return annotation as an output
    return dag


def pipeline_spec(loaded: LoadedConfig, pipeline: Pipeline, model: str) -> dict[str, Any]:
    """The compiled KFP v2 pipeline spec (a JSON-able dict) of `model`'s training pipeline."""
    name = naming.pipeline_name(pipeline.name, model)
    func = dsl.pipeline(name=name, description=f"{loaded.config.project}: {pipeline.name} of "
                        f"{model} ({loaded.env})", pipeline_root=pipeline_root(loaded, model))(
        _dag(loaded, pipeline, model))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pipeline.yaml"
        compiler.Compiler().compile(func, str(path))
        spec: dict[str, Any] = yaml.safe_load(path.read_text())
    return spec


def pipeline_yaml(loaded: LoadedConfig, pipeline: Pipeline, model: str) -> str:
    """The spec as the YAML file KFP writes (what `kfp`'s loaders read back)."""
    return yaml.safe_dump(pipeline_spec(loaded, pipeline, model), sort_keys=False)
