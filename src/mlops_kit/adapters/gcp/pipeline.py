"""The Vertex AI Pipelines (KFP v2) spec of a model, compiled from the pipeline DAG.

Each step is a KFP container component running
`python -m mlops_kit.runtime.job <step> --config <image path> --env <env> --model <model>
--set registry.backend=vertex` in the project image, so Vertex runs the same step code as
`mlops-kit run` and registers to the Vertex Model Registry. Every output is a KFP artifact of
the run (under the pipeline root, one folder per task execution) and the steps after it read
that artifact, so a run reads its own data only; the job entry also copies each output the DAG
publishes into its lake table (`--publish OUTPUT=/gcs/<bucket>/<table>`, Vertex's Cloud Storage
FUSE mount), partition by partition, where the BigQuery tables read it.

The pipeline takes two parameters: `source_uri` (a `gs://` folder, default the raw bucket's
`landing/`), imported as an artifact and bound to ingest's `source` channel, so Vertex hands
ingest its FUSE path; and `ingest_date` (empty: the day of the run). `register` records the
pipeline job's name as the run. Inputs wired to `registry.production` are not bound:
`runtime.job` fetches the production model itself. Vertex may cache a step only if
`Step.reusable` says so.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import yaml
from kfp import compiler, dsl

from mlops_kit.adapters.gcp import naming
from mlops_kit.adapters.gcp.machines import machine_resources
from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import FileSource
from mlops_kit.fileio import work_dir
from mlops_kit.pipeline import EXTERNAL, Pipeline, Step

RUNNER = ["python", "-m", "mlops_kit.runtime.job"]
BACKEND = "vertex"  # the steps register to, and fetch production from, the Vertex registry
SOURCE_URI, INGEST_DATE, RUN_ID = "source_uri", "ingest_date", "run_id"
SOURCE_CHANNEL = "source"  # ingest's optional channel: the files to ingest
KIND = inspect.Parameter.POSITIONAL_OR_KEYWORD


def lake_path(loaded: LoadedConfig, zone: str) -> str:
    """A zone's table folder as the job sees it (Cloud Storage FUSE)."""
    table = naming.lake_table(loaded.config, zone)
    return f"/gcs/{naming.bucket(loaded, zone)}/{table}"


def pipeline_root(loaded: LoadedConfig, model: str) -> str:
    """Where Vertex keeps a model's runs' artifacts."""
    return f"gs://{naming.bucket(loaded, 'pipelines')}/runs/{model}"


def landing_uri(loaded: LoadedConfig) -> str:
    """Where new source files arrive: the default of the `source_uri` parameter."""
    return f"gs://{naming.bucket(loaded, 'raw')}/landing/"


def takes_source(loaded: LoadedConfig, step: Step) -> bool:
    """Whether `step` reads the run's `source_uri`: a source step of a file source."""
    return (isinstance(loaded.config.data.source, FileSource) and not step.upstream
            and SOURCE_CHANNEL in step.spec.optional_inputs)


def parameters(step: Step) -> list[str]:
    """The step's string inputs: the ingest date of a source step, the run of `register`."""
    return ([INGEST_DATE] if not step.upstream else []) + \
        ([RUN_ID] if step.name == "register" else [])


def artifact_inputs(loaded: LoadedConfig, step: Step) -> list[str]:
    """The channels bound to artifacts: every input but the production model, and the
    source of a source step."""
    ins = [ch for ch, src in step.inputs.items() if src not in EXTERNAL]
    return ins + ([SOURCE_CHANNEL] if takes_source(loaded, step) else [])


def _arguments(loaded: LoadedConfig, step: Step, model: str) -> list[str]:
    """The job's arguments that name no placeholder: config, model, backend, publishing."""
    args = [step.name, f"--config={loaded.config.image.config_path}", f"--env={loaded.env}",
            f"--model={model}", f"--set=registry.backend={BACKEND}"]
    return args + [f"--publish={ch}={lake_path(loaded, out.publish)}"
                   for ch, out in step.outputs.items() if out.publish]


def _component(loaded: LoadedConfig, step: Step, model: str) -> Any:
    """The step as a KFP container component: artifact inputs and outputs, string params."""
    ins, params, outs = artifact_inputs(loaded, step), parameters(step), list(step.outputs)
    fixed = _arguments(loaded, step, model)

    def body(*values: Any) -> dsl.ContainerSpec:
        bound = dict(zip(ins + params + outs, values, strict=True))
        args = [*fixed, *(f"--input={ch}={bound[ch].path}" for ch in ins),
                *(f"--output={ch}={bound[ch].path}" for ch in outs),
                *(f"--param={p}={bound[p]}" for p in params)]
        return dsl.ContainerSpec(image=naming.image(loaded), command=RUNNER, args=args)

    signature = [inspect.Parameter(c, KIND, annotation=dsl.Input[dsl.Artifact]) for c in ins]
    signature += [inspect.Parameter(p, KIND, annotation=str) for p in params]
    signature += [inspect.Parameter(c, KIND, annotation=dsl.Output[dsl.Artifact]) for c in outs]
    return dsl.container_component(_typed(body, step.name.replace("-", "_"), signature))


def _typed(func: Callable[..., Any], name: str,
           signature: list[inspect.Parameter]) -> Callable[..., Any]:
    """`func` with the name and signature KFP reads its inputs and outputs from."""
    func.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    func.__annotations__ = {p.name: p.annotation for p in signature}
    func.__name__ = name
    return func


def _dag(loaded: LoadedConfig, pipeline: Pipeline, model: str) -> Callable[..., None]:
    """The pipeline function: its run parameters, one task per step, wired as the DAG says."""
    cpus, memory = machine_resources(loaded.config.gcp.training_machine_type)
    components = {s.name: _component(loaded, s, model) for s in pipeline.steps}
    files = any(takes_source(loaded, s) for s in pipeline.steps)
    signature = [inspect.Parameter(INGEST_DATE, KIND, annotation=str, default="")]  # "": today
    if files:
        signature.insert(0, inspect.Parameter(SOURCE_URI, KIND, annotation=str,
                                              default=landing_uri(loaded)))

    def dag(*given: Any) -> None:
        run = dict(zip([p.name for p in signature], given, strict=True))
        tasks: dict[str, Any] = {}
        source = _source(run[SOURCE_URI]) if files else None
        strings = {INGEST_DATE: run[INGEST_DATE], RUN_ID: dsl.PIPELINE_JOB_NAME_PLACEHOLDER}
        for step in pipeline.steps:
            values: dict[str, Any] = {ch: tasks[src.split(".")[0]].outputs[src.split(".")[1]]
                                      for ch, src in step.inputs.items() if src not in EXTERNAL}
            if takes_source(loaded, step):
                values[SOURCE_CHANNEL] = source
            values.update({p: strings[p] for p in parameters(step)})
            task = components[step.name](**values)
            task.set_display_name(step.name).set_caching_options(step.reusable)
            if step.spec.kind == "training":
                task.set_cpu_limit(str(cpus)).set_memory_limit(f"{memory:g}G")
            tasks[step.name] = task

    return _typed(dag, "dag", signature)  # no return annotation: KFP reads it as outputs


def _source(uri: Any) -> Any:
    """The `source_uri` folder as an artifact of this run (imported anew every run: the
    files under the same URI change), which Vertex mounts for ingest."""
    task = dsl.importer(artifact_uri=uri, artifact_class=dsl.Artifact, reimport=True)
    task.set_display_name(SOURCE_CHANNEL).set_caching_options(False)
    return task.output


def pipeline_spec(loaded: LoadedConfig, pipeline: Pipeline, model: str) -> dict[str, Any]:
    """The compiled KFP v2 pipeline spec (a JSON-able dict) of `model`'s training pipeline."""
    name = naming.pipeline_name(pipeline.name, model)
    func = dsl.pipeline(name=name, description=f"{loaded.config.project}: {pipeline.name} of "
                        f"{model} ({loaded.env})", pipeline_root=pipeline_root(loaded, model))(
        _dag(loaded, pipeline, model))
    with work_dir(loaded.state_dir, "pipeline") as folder:
        path = folder / "pipeline.yaml"
        compiler.Compiler().compile(func, str(path))
        spec: dict[str, Any] = yaml.safe_load(path.read_text())
    return spec


def pipeline_yaml(loaded: LoadedConfig, pipeline: Pipeline, model: str) -> str:
    """The spec as the YAML file KFP writes (what `kfp`'s loaders read back)."""
    return yaml.safe_dump(pipeline_spec(loaded, pipeline, model), sort_keys=False)
