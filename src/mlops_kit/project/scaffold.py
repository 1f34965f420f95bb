"""`mlops-kit init`: render a project folder from the kit's copier template.

The template (`project/template/`, copier.yml at its root) asks the questions; with `--from`
the inferred mlops.yaml goes through the template as the `mlops_yaml` answer, so the
environments of the chosen clouds are written by one rule for both kinds of project.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from mlops_kit import __version__
from mlops_kit.config.model import CLOUD_NAME
from mlops_kit.errors import MlopsKitError
from mlops_kit.project import update
from mlops_kit.project.infer import cloud_name, infer_project
from mlops_kit.project.toolchain import CDK_CLI

TEMPLATE = files("mlops_kit.project") / "template"  # copier.yml at its root
ENV_LINE = "environments: {}"  # the inferred text's local-only line; the template writes its own


class InitError(MlopsKitError):
    """A project folder `init` cannot render; the message names the folder and the fix."""

    kind = "init error"
    exit_code = 2


def render(dest: str | Path, answers: dict[str, Any], *, from_data: str | Path | None = None,
           target: str | None = None, defaults: bool = False, force: bool = False) -> Path:
    """Render the project template into `dest` with `answers` (copier asks for the rest
    unless `defaults`); with `from_data` and `target`, mlops.yaml is inferred from that file.
    Returns the project folder."""
    dest = Path(dest).resolve()
    _check_empty(dest, force)
    data = {"kit_version": __version__, "cdk_cli": CDK_CLI, **answers}
    folder_name = {"project": cloud_name(dest.name)}  # the default, made a valid name
    if from_data is not None:
        if not target:
            raise InitError("--from needs --target COLUMN: the column to predict")
        data = folder_name | data  # the inferred config names the project: decide it first
        if not re.fullmatch(CLOUD_NAME, data["project"]):
            raise InitError(f"--project {data['project']!r}: 2 to 41 lower case letters, "
                            "digits and single hyphens, starting with a letter")
        data["mlops_yaml"] = _inferred_yaml(Path(from_data), target, dest, data["project"])
    _copy(dest, data, defaults=defaults, force=force, user_defaults=folder_name)
    _write_ci(dest)
    update.write_record(dest, update.tree(dest), inferred=from_data is not None)
    return dest


def update_project(folder: str | Path) -> update.Update:
    """`init --update`: render this kit's template with the project's recorded answers (and
    its own mlops.yaml for the CI files) and apply it (project/update.py says how)."""
    from mlops_kit.config.loader import ConfigError

    folder = Path(folder).resolve()
    _check_project(folder)
    record = update.read_record(folder)  # a clear error before any work
    data = {"kit_version": __version__, "cdk_cli": CDK_CLI, **_recorded_answers(folder)}
    config = folder / "mlops.yaml"
    if record.inferred and config.is_file():
        data["mlops_yaml"] = config.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="mlops-kit-update-") as tmp:
        fresh = Path(tmp) / folder.name
        _copy(fresh, data, defaults=True, force=False, user_defaults={},
              where=folder / update.ANSWERS)
        if config.is_file():
            shutil.copyfile(config, fresh / "mlops.yaml")
        try:
            _write_ci(fresh, config=config)
        except ConfigError as exc:
            raise update.UpdateError(f"{exc}; the CI files are rendered from it: fix it "
                                     "(`mlops-kit validate`) and run the update again") from None
        return update.apply(folder, fresh)


def _check_project(folder: Path) -> None:
    if not folder.is_dir():
        raise update.UpdateError(f"{folder}: no such folder; name the project folder init wrote")
    if (folder / update.ANSWERS).is_file():
        return
    above = next((p for p in folder.parents if (p / update.ANSWERS).is_file()), None)
    hint = (f"the project is {above}: run `mlops-kit init --update {above}`" if above else
            "name the folder `mlops-kit init` rendered, or restore the file from git "
            f"(`git checkout -- {update.ANSWERS}`)")
    raise update.UpdateError(f"{folder / update.ANSWERS}: not found; {hint}")


def _recorded_answers(folder: Path) -> dict[str, Any]:
    """The answers `.copier-answers.yml` records (copier's own `_` keys left out)."""
    import yaml

    path = folder / update.ANSWERS
    fix = f"restore it from git (`git checkout -- {update.ANSWERS}`)"
    try:
        answers = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise update.UpdateError(f"{path}: unreadable ({exc}); {fix}") from None
    if not isinstance(answers, dict):
        raise update.UpdateError(f"{path}: not a mapping of question to answer; {fix}")
    return {str(k): v for k, v in answers.items() if not str(k).startswith("_")}


def _copy(dest: Path, data: dict[str, Any], *, defaults: bool, force: bool,
          user_defaults: dict[str, Any], where: Path | None = None) -> None:
    """Render the kit's template into `dest` with copier; a bad answer is an InitError naming
    the flag, or `where` the answers came from."""
    import copier

    with as_file(TEMPLATE) as template:
        try:
            copier.run_copy(str(template), dest, data=data, defaults=defaults, unsafe=False,
                            quiet=True, overwrite=force, user_defaults=user_defaults)
        except ValueError as exc:  # copier's "Validation error for question 'x': why"
            if where is not None:
                raise InitError(f"{where}: {exc}; correct that answer there") from None
            raise InitError(f"{dest}: {exc}; pass it as a flag (mlops-kit init --help)") from None


def _write_ci(dest: Path, config: Path | None = None) -> None:
    """Write the CI files of the `ci` answer (recorded by copier in `dest`) for `config`
    (default: the rendered one)."""
    import yaml

    from mlops_kit.config import load_config
    from mlops_kit.project import ci

    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text(encoding="utf-8"))
    loaded = load_config(config or dest / "mlops.yaml")
    for relative, text in ci.render(loaded, answers["ci"]).items():
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _check_empty(dest: Path, force: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise InitError(f"{dest}: not a folder; name a new or empty folder")
    if not force and dest.is_dir() and any(dest.iterdir()):
        raise InitError(f"{dest}: the folder is not empty; name a new or empty folder, or pass "
                        "--force to write the project into it (files it writes are replaced)")


def _inferred_yaml(source: Path, target: str, dest: Path, project: str | None) -> str:
    """The commented mlops.yaml `infer` writes, the data referenced from `dest` (relative when
    inside it, absolute otherwise), without its local-only environments line."""
    text = infer_project(source, target, name=project, out_dir=dest).to_yaml()
    lines = [line for line in text.splitlines() if not line.startswith(ENV_LINE)]
    return "\n".join(lines).rstrip() + "\n"
