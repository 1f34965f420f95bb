"""The cloud checks of `mlops-kit validate`: each environment against its cloud's rules.

The rules are those the CDK app and the Pulumi program run before they build anything
(`adapters/<cloud>/rules.py`), so `validate` refuses what `cdk synth` or `pulumi up` would.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from mlops_kit.adapters.aws import rules as aws
from mlops_kit.adapters.azure import rules as azure
from mlops_kit.adapters.gcp import rules as gcp
from mlops_kit.adapters.rules import Problem, Rule, from_error, pipeline_file
from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.config.model import FileSource
from mlops_kit.extras import install_hint

CLOUDS: dict[str, ModuleType] = {"aws": aws, "azure": azure, "gcp": gcp}


@dataclass
class Report:
    """What the clouds would refuse, and the rules this installation cannot run."""

    problems: list[Problem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def apply(self, rules: Iterable[Rule], loaded: LoadedConfig, cloud: str = "") -> None:
        """Run `rules` on `loaded`; a rule whose optional package is missing is skipped."""
        for rule in rules:
            try:
                found = rule(loaded)
            except ImportError as exc:
                missing = exc.name or str(exc)
                note = (f"{cloud} {rule.__name__.replace('_', ' ')}: needs {missing}: "
                        f"{install_hint(missing)}")
                if note not in self.skipped:
                    self.skipped.append(note)
                continue
            self.problems += [p for p in found if p not in self.problems]


def check(path: str | Path, env: str | None = None, sets: Iterable[str] = ()) -> Report:
    """Every environment of the file (or `env` only), each loaded with its overrides and
    `sets`, against its cloud's rules; then the rules across each cloud's environments.
    ConfigError if the file itself does not load."""
    base = load_config(path, sets=list(sets))
    report = Report()
    report.apply([pipeline_file], base)
    check_source(base if env is None else load_config(path, env=env, sets=list(sets)), report)
    names = [env] if env else list(base.config.environments)
    first: dict[str, LoadedConfig] = {}  # cloud -> its first environment
    for name in names:
        try:
            loaded = load_config(path, env=name, sets=list(sets))
        except ConfigError as exc:
            report.problems += from_error(str(exc))
            continue
        cloud = base.config.environments[name].cloud
        first.setdefault(cloud, loaded)
        report.apply(CLOUDS[cloud].ENVIRONMENT_RULES, loaded, cloud)
    for name, loaded in first.items():
        report.apply(CLOUDS[name].FILE_RULES, loaded, name)
    return report



def check_source(loaded: LoadedConfig, report: Report) -> None:
    """A CSV or Parquet source against the schema and the task (`validate.check_data`):
    errors become problems, rows the validate step would quarantine become notes."""
    from mlops_kit.steps.base import StepError
    from mlops_kit.steps.ingest import source_rows
    from mlops_kit.steps.validate import check_data

    cfg = loaded.config
    source = cfg.data.source
    if not isinstance(source, FileSource):
        return
    where = f"{loaded.resolve(source.path)}"
    try:
        raw = source_rows(source, cfg.table, loaded.root)
    except StepError as exc:
        report.problems.append(Problem(str(loaded.path), "data.source", f"data.source: {exc}"))
        return
    found = check_data(raw, cfg.table, cfg.model.task, cfg.data.max_bad_fraction)
    report.problems += [Problem(where, "data", line, loaded.env) for line in found.errors]
    report.notes += [f"{where}: {line}" for line in found.notes]
