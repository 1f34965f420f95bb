"""The cloud-neutral pipeline definition, loaded and checked: the kit's own DAG (package data,
`mlops_kit/pipelines/training.yaml`) unless the config's `pipeline:` names a project file.

Every runner (local, SageMaker, Azure ML, Vertex AI) reads the same definition: steps in
order, each wired by channel names to the outputs of earlier steps.
"""

from __future__ import annotations

import importlib
import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mlops_kit.config import ConfigError, LoadedConfig
from mlops_kit.config.loader import read_yaml
from mlops_kit.steps.base import StepSpec

EXTERNAL = {"registry.production"}


@dataclass(frozen=True)
class Output:
    name: str
    publish: str | None = None
    online_store: bool = False


@dataclass(frozen=True)
class Step:
    """One step of the DAG: its module, inputs (`channel -> source`) and outputs."""

    name: str
    inputs: dict[str, str]
    outputs: dict[str, Output]
    module: ModuleType = field(repr=False, compare=False)
    cache: bool = True

    @property
    def spec(self) -> StepSpec:
        spec: StepSpec = self.module.SPEC
        return spec

    @property
    def upstream(self) -> set[str]:
        return {src.split(".")[0] for src in self.inputs.values() if src not in EXTERNAL}

    @property
    def reusable(self) -> bool:
        """Whether a cloud may replay an earlier result of this step for unchanged inputs
        (Vertex caching, Azure ML `is_deterministic`): only if all it reads is this run's
        output of earlier steps (a source location, a lake table or the production model can
        change under the same path) and it has no side effect a replay would skip (an output
        published to the lake or the online store)."""
        return (self.cache and bool(self.inputs) and not set(self.inputs.values()) & EXTERNAL
                and not any(o.publish or o.online_store for o in self.outputs.values()))


@dataclass(frozen=True)
class Pipeline:
    name: str
    steps: tuple[Step, ...]
    path: Path

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


def load_pipeline(loaded: LoadedConfig) -> Pipeline:
    """The config's pipeline file (the kit's DAG if it names none), checked against each step
    module's own signature."""
    path = pipeline_file(loaded)
    if not path.is_file():
        raise ConfigError(f"{loaded.path}: pipeline: file {path} not found")
    return parse_pipeline(read_yaml(path)[1], path)


def pipeline_file(loaded: LoadedConfig) -> Path:
    """Where the pipeline DAG is: the config's `pipeline:` or the kit's default."""
    if loaded.config.pipeline is not None:
        return loaded.resolve(loaded.config.pipeline)
    return Path(str(importlib.resources.files("mlops_kit") / "pipelines" / "training.yaml"))


def parse_pipeline(raw: Any, path: Path) -> Pipeline:
    if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list) or not raw["steps"]:
        raise ConfigError(f"{path}: needs a 'steps' list")
    steps: list[Step] = []
    for i, item in enumerate(raw["steps"]):
        steps.append(_step(item, f"{path}: steps[{i}]", {s.name: s for s in steps}))
    return Pipeline(str(raw.get("name", path.stem)), tuple(steps), path)


def _step(item: Any, where: str, earlier: dict[str, Step]) -> Step:
    if not isinstance(item, dict) or "name" not in item:
        raise ConfigError(f"{where}: each step needs a 'name'")
    name = item["name"]
    try:
        module = importlib.import_module(f"mlops_kit.steps.{name}")
        spec: StepSpec = module.SPEC
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where}: no step module mlops_kit.steps.{name}") from exc
    inputs = dict(item.get("inputs") or {})
    outputs = {k: Output(k, **(v or {})) for k, v in (item.get("outputs") or {}).items()}
    declared = set(spec.inputs) | set(spec.optional_inputs)
    if not set(spec.inputs) <= set(inputs) or not set(inputs) <= declared:
        raise ConfigError(f"{where} ({name}): inputs {sorted(inputs)} do not match the step's "
                          f"channels {sorted(spec.inputs)} "
                          f"(optional {sorted(spec.optional_inputs)})")
    if set(outputs) != set(spec.outputs):
        raise ConfigError(f"{where} ({name}): outputs {sorted(outputs)} do not match the step's "
                          f"channels {sorted(spec.outputs)}")
    for channel, source in inputs.items():
        src_step, _, src_out = str(source).partition(".")
        if source in EXTERNAL:
            continue
        if src_step not in earlier or src_out not in earlier[src_step].outputs:
            raise ConfigError(f"{where} ({name}): input {channel} = {source!r} is not an output "
                              "of an earlier step")
    return Step(name, inputs, outputs, module, bool(item.get("cache", True)))
