"""`mlops-kit init --update`: a project rendered by an older kit's template brought to this one.

The older template is this kit's template with a few files changed, one dropped and one
missing (what a template change between two kit versions looks like); the project is rendered
with it, edited the way a team edits one, then updated with the installed template. What an
update must give is a fresh `init` of the same answers, but for what the team changed.
"""

from __future__ import annotations

import json
import shutil
from importlib.resources import as_file
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_kit.cli import main
from mlops_kit.project import scaffold, update

FLAGS = ["--cloud", "aws", "--cloud", "gcp", "--ci", "github"]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def old_template(tmp_path: Path) -> Path:
    """The template of an 'older kit': README and Dockerfile differ, no package.json, one
    file (NOTES.md) the current template dropped."""
    with as_file(scaffold.TEMPLATE) as current:
        old = tmp_path / "old-template"
        shutil.copytree(current, old)
    files = old / "files"
    (files / "README.md.jinja").write_text(
        (files / "README.md.jinja").read_text() + "\nAn older kit's line.\n")
    (files / "Dockerfile.jinja").write_text(
        (files / "Dockerfile.jinja").read_text().replace("FROM ", "# older\nFROM ", 1))
    next(files.glob("*package.json*")).unlink()
    (files / "NOTES.md").write_text("notes of the older template\n")
    return old


def render_with(template: Path | None, dest: Path, *args: str) -> Path:
    """`init` with `template` (None: the installed one)."""
    saved = scaffold.TEMPLATE
    if template is not None:
        scaffold.TEMPLATE = template  # type: ignore[assignment]
    try:
        code, out = invoke("init", str(dest), "--defaults", *args)
    finally:
        scaffold.TEMPLATE = saved
    assert code == 0, out
    return dest


def contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_updating_a_fresh_project_changes_nothing(tmp_path: Path) -> None:
    project = render_with(None, tmp_path / "proj", *FLAGS)
    before = contents(project)
    code, out = invoke("init", "--update", str(project))
    assert code == 0 and "already at mlops-kit" in out, out
    assert contents(project) == before


def test_an_update_applies_the_template_but_keeps_what_the_team_changed(
        tmp_path: Path, old_template: Path) -> None:
    project = render_with(old_template, tmp_path / "proj", *FLAGS)
    want = contents(render_with(None, tmp_path / "want" / "proj", *FLAGS))
    assert "An older kit's line." in (project / "README.md").read_text()
    assert (project / "NOTES.md").is_file() and not (project / "package.json").exists()
    mine = {"mlops.yaml": (project / "mlops.yaml").read_text() + "# our change\n",
            "Dockerfile": (project / "Dockerfile").read_text() + "# our line\n",
            "src/proj/__init__.py": '"""Our model code."""\n'}
    for rel, text in mine.items():
        (project / rel).write_text(text)
    (project / "Pulumi.gcp_prod.yaml").unlink()  # we deploy gcp_dev only

    code, out = invoke("init", "--update", str(project))
    assert code == 1, out  # a conflict to merge
    assert "updated: README.md" in out and "added: package.json" in out
    assert "removed: NOTES.md" in out and "kept (you deleted it): Pulumi.gcp_prod.yaml" in out
    assert "conflict: Dockerfile" in out and "Dockerfile.new" in out
    got = contents(project)
    assert {k: got[k].decode() for k in mine} == mine  # the team's files as they left them
    assert got["Dockerfile.new"] == want["Dockerfile"]
    untouched = set(want) - set(mine) - {"Pulumi.gcp_prod.yaml", update.RECORD}
    assert {k: got[k] for k in untouched} == {k: want[k] for k in untouched}
    assert "NOTES.md" not in got and "Pulumi.gcp_prod.yaml" not in got

    code, out = invoke("init", "--update", str(project))  # merged or not, nothing new to do
    assert code == 0 and "already at" in out, out


def test_an_update_cut_short_is_finished_by_running_it_again(
        tmp_path: Path, old_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = render_with(old_template, tmp_path / "proj", *FLAGS)
    want = contents(render_with(None, tmp_path / "want" / "proj", *FLAGS))
    real, calls = update._replace, []

    def killed_on_the_second_write(path: Path, data: bytes, mode: int = 0o644) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process stops mid-update
        real(path, data, mode)

    monkeypatch.setattr(update, "_replace", killed_on_the_second_write)
    code, _ = invoke("init", "--update", str(project))
    assert code != 0 and len(calls) == 2
    monkeypatch.setattr(update, "_replace", real)
    assert not [p for p in project.rglob("*.tmp")]  # no half-written file left
    code, out = invoke("init", "--update", str(project))
    assert code == 0, out
    got = contents(project)
    assert {k: got[k] for k in want if k != update.RECORD} == {
        k: v for k, v in want.items() if k != update.RECORD}
    assert "NOTES.md" not in got


@pytest.mark.parametrize("damage", ["missing", "not json", "no files"])
def test_a_damaged_record_is_named_with_the_fix(tmp_path: Path, damage: str) -> None:
    project = render_with(None, tmp_path / "proj", *FLAGS)
    record = project / update.RECORD
    if damage == "missing":
        record.unlink()
    else:
        record.write_text("{not json" if damage == "not json" else json.dumps({"kit": 1}))
    before = contents(project)
    code, out = invoke("init", "--update", str(project))
    assert code == 2 and str(record) in out and "git checkout" in out, out
    assert contents(project) == before


def test_a_folder_init_did_not_write_is_refused(tmp_path: Path) -> None:
    code, out = invoke("init", "--update", str(tmp_path))
    assert code == 2 and ".copier-answers.yml: not found" in out, out


def test_update_takes_no_answers(tmp_path: Path) -> None:
    project = render_with(None, tmp_path / "proj", *FLAGS)
    code, out = invoke("init", "--update", str(project), "--cloud", "azure")
    assert code == 2 and "--update takes no answers (--cloud)" in out, out


def test_an_inferred_project_keeps_its_inferred_files(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(200)))
    project = render_with(None, tmp_path / "proj", "--from", str(data), "--target", "y",
                          *FLAGS)
    before = contents(project)
    code, out = invoke("init", "--update", str(project))
    assert code == 0 and "already at" in out, out
    assert contents(project) == before


def _record(project: Path) -> dict:
    return json.loads((project / update.RECORD).read_text())


@pytest.mark.parametrize("entry", ["../victim.txt", "/tmp/victim.txt"])
def test_a_record_naming_a_file_outside_the_project_deletes_nothing(
        tmp_path: Path, entry: str) -> None:
    project = render_with(None, tmp_path / "w" / "proj", *FLAGS)
    victim = (project / entry) if not entry.startswith("/") else tmp_path / "victim.txt"
    victim.write_text("someone else's\n")
    raw = _record(project)
    raw["files"][entry if not entry.startswith("/") else str(victim)] = update.digest(victim)
    (project / update.RECORD).write_text(json.dumps(raw))
    code, out = invoke("init", "--update", str(project))
    assert code == 2 and "is not a path inside the project" in out, out
    assert victim.read_text() == "someone else's\n"


def test_a_teams_new_file_is_never_overwritten(tmp_path: Path, old_template: Path) -> None:
    project = render_with(old_template, tmp_path / "proj", *FLAGS)
    (project / "Dockerfile").write_text("FROM ours\n")
    (project / "Dockerfile.new").write_text("our draft\n")
    code, out = invoke("init", "--update", str(project))
    assert code == 1 and "the template's is Dockerfile.new.1" in out, out
    assert (project / "Dockerfile.new").read_text() == "our draft\n"
    assert (project / "Dockerfile").read_text() == "FROM ours\n"
    code, out = invoke("init", "--update", str(project))
    assert code == 0 and "pending: Dockerfile.new" in out, out


def test_a_record_of_a_newer_kit_is_not_downgraded(tmp_path: Path) -> None:
    project = render_with(None, tmp_path / "proj", *FLAGS)
    raw = _record(project)
    raw["kit_version"] = "9.9.9"
    (project / update.RECORD).write_text(json.dumps(raw))
    before = contents(project)
    code, out = invoke("init", "--update", str(project))
    assert code == 2 and "newer than this" in out and "mlops-kit>=9.9.9" in out, out
    assert contents(project) == before


@pytest.mark.parametrize("damage", ["bad answers yaml", "answers a list", "bad mlops.yaml",
                                    "no mlops.yaml", "a folder for the Dockerfile",
                                    "a file for .github", "bad answer"])
def test_a_damaged_project_gets_one_line_naming_the_file(tmp_path: Path, damage: str) -> None:
    project = render_with(None, tmp_path / "proj", *FLAGS)
    answers, config = project / update.ANSWERS, project / "mlops.yaml"
    raw = _record(project)
    named = {"bad answers yaml": answers, "answers a list": answers, "bad answer": answers,
             "bad mlops.yaml": config, "no mlops.yaml": config,
             "a folder for the Dockerfile": project / "Dockerfile",
             "a file for .github": project / ".github" / "workflows" / "mlops.yml"}[damage]
    if damage == "bad answers yaml":
        answers.write_text("a: [\n")
    elif damage == "answers a list":
        answers.write_text("- a\n")
    elif damage == "bad answer":
        answers.write_text(answers.read_text().replace("- gcp", "- mars"))
    elif damage == "bad mlops.yaml":
        config.write_text("project: [\n")
    elif damage == "no mlops.yaml":
        config.unlink()
    elif damage == "a folder for the Dockerfile":
        (project / "Dockerfile").unlink()
        (project / "Dockerfile").mkdir()
        raw["files"]["Dockerfile"] = "0" * 64  # and the template changed it
        (project / update.RECORD).write_text(json.dumps(raw))
    else:
        shutil.rmtree(project / ".github")
        (project / ".github").write_text("not a folder\n")
        del raw["files"][".github/workflows/mlops.yml"]
        (project / update.RECORD).write_text(json.dumps(raw))
    result = CliRunner().invoke(main, ["init", "--update", str(project)])
    assert result.exit_code == 2, result.output  # an uncaught exception exits 1
    assert str(named) in result.output and "Traceback" not in result.output, result.output


def test_run_in_a_subfolder_it_names_the_project(tmp_path: Path) -> None:
    project = render_with(None, tmp_path / "proj", *FLAGS)
    code, out = invoke("init", "--update", str(project / "src"))
    assert code == 2 and f"mlops-kit init --update {project}" in out, out
