"""The file-backed model registry: numbering, statuses, errors, atomicity and concurrency."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest

from mlops_kit.config import load_config
from mlops_kit.errors import StateFileError
from mlops_kit.registry import (
    STATUSES,
    ModelVersion,
    Registry,
    RegistryError,
    Status,
    open_registry,
    production,
)
from mlops_kit.registry import local as local_module
from mlops_kit.registry.base import Mismatch, model_digest
from mlops_kit.registry.local import LocalRegistry

CONFIG = """
project: demo
data:
  schema:
    columns: [{name: x, type: float}, {name: y, type: int}]
    target: y
features:
  declared: [{name: x, inputs: [x]}]
"""


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small model folder with a nested file."""
    folder = tmp_path / "model"
    (folder / "extra").mkdir(parents=True)
    (folder / "model.json").write_text('{"trees": 3}')
    (folder / "extra" / "features.txt").write_text("a\nb\n")
    return folder


def register(reg: Registry, model_dir: Path, status: Status = "Approved",
             **lineage: str) -> ModelVersion:
    """Register `model_dir` as a version of `churn` with a few metrics."""
    return reg.register("churn", model_dir, status=status, metrics={"roc_auc": 0.8},
                        params={"max_depth": 5}, lineage=lineage, description="test")


def test_versions_are_numbered_from_one_and_stored(tmp_path: Path, model_dir: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    assert reg.versions("churn") == []
    v1 = reg.register("churn", model_dir, status="Approved", metrics={"roc_auc": 1},
                      params={"max_depth": 5}, lineage={"run": "r1"}, description="first")
    v2 = register(reg, model_dir, run="r2")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.metrics == {"roc_auc": 1.0} and isinstance(v1.metrics["roc_auc"], float)
    assert [v.version for v in reg.versions("churn")] == [1, 2]
    assert reg.get("churn", 1) == v1
    folder = Path(urlparse(v1.artifact_uri).path)
    assert v1.artifact_uri.startswith("file://") and folder == tmp_path / "reg" / "churn" / "1"
    assert (folder / "model.json").read_text() == '{"trees": 3}'
    assert json.loads((folder / "version.json").read_text())["lineage"] == {"run": "r1"}
    created = datetime.fromisoformat(v1.created)
    assert created.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60
    assert LocalRegistry(tmp_path / "reg").versions("churn") == reg.versions("churn")


def test_statuses_and_production(tmp_path: Path, model_dir: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    assert production(reg, "churn") is None
    register(reg, model_dir, "Approved")
    register(reg, model_dir, "PendingManualApproval")
    assert production(reg, "churn").version == 1  # type: ignore[union-attr]
    updated = reg.set_status("churn", 2, "Approved")
    assert updated.status == "Approved" and updated.version == 2
    assert production(reg, "churn").version == 2  # type: ignore[union-attr]
    reg.set_status("churn", 2, "Rejected")
    assert production(reg, "churn").version == 1  # type: ignore[union-attr]
    version_json = tmp_path / "reg" / "churn" / "2" / "version.json"
    assert json.loads(version_json.read_text())["status"] == "Rejected"
    assert [v.status for v in reg.versions("churn")] == ["Approved", "Rejected"]


def test_invalid_status_lists_the_allowed_ones(tmp_path: Path, model_dir: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    with pytest.raises(RegistryError) as err:
        register(reg, model_dir, "Production")  # type: ignore[arg-type]
    assert all(s in str(err.value) for s in STATUSES)
    register(reg, model_dir)
    with pytest.raises(RegistryError, match="PendingManualApproval"):
        reg.set_status("churn", 1, "approved")  # type: ignore[arg-type]
    assert reg.get("churn", 1).status == "Approved"


def test_unknown_model_and_version(tmp_path: Path, model_dir: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    register(reg, model_dir)
    with pytest.raises(RegistryError, match=r"model 'other' is not registered.*churn"):
        reg.get("other", 1)
    with pytest.raises(RegistryError, match=r"no version 7 \(versions: 1\)"):
        reg.get("churn", 7)
    with pytest.raises(RegistryError, match="no version 3"):
        reg.set_status("churn", 3, "Approved")
    with pytest.raises(RegistryError, match="no version 9"):
        reg.download("churn", 9, tmp_path / "dl")
    with pytest.raises(RegistryError, match="invalid model name"):
        reg.versions("../escape")


def test_bad_model_folders(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    with pytest.raises(RegistryError, match="does not exist"):
        register(reg, tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RegistryError, match="no files"):
        register(reg, tmp_path / "empty")
    (tmp_path / "clash").mkdir()
    (tmp_path / "clash" / "version.json").write_text("{}")
    with pytest.raises(RegistryError, match="reserved"):
        register(reg, tmp_path / "clash")
    assert reg.versions("churn") == []


def test_download_copies_model_files(tmp_path: Path, model_dir: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    register(reg, model_dir)
    dest = reg.download("churn", 1, tmp_path / "out" / "model")
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert got == ["extra/features.txt", "model.json"]
    (dest / "model.json").write_text("tampered")
    assert (tmp_path / "reg" / "churn" / "1" / "model.json").read_text() == '{"trees": 3}'


def test_failure_while_copying_leaves_no_version(tmp_path: Path, model_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    real_copy = local_module.shutil.copy2
    calls = {"n": 0}

    def flaky_copy(src: Path, dst: Path) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_copy(src, dst)

    monkeypatch.setattr(local_module.shutil, "copy2", flaky_copy)
    with pytest.raises(OSError, match="disk full"):
        register(reg, model_dir)
    monkeypatch.undo()
    assert reg.versions("churn") == []
    assert sorted(p.name for p in (tmp_path / "reg" / "churn").iterdir()) == [".lock"]
    assert register(reg, model_dir).version == 1


def test_failure_writing_the_index_rolls_back(tmp_path: Path, model_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    register(reg, model_dir)
    real_write = local_module.write_json_atomic

    def failing_index(path: Path, data: object) -> None:
        if path.name == "registry.json":
            raise OSError("crash before commit")
        real_write(path, data)

    monkeypatch.setattr(local_module, "write_json_atomic", failing_index)
    with pytest.raises(OSError, match="crash before commit"):
        register(reg, model_dir)
    monkeypatch.undo()
    assert [v.version for v in reg.versions("churn")] == [1]
    assert not (tmp_path / "reg" / "churn" / "2").exists()


def test_only_staged_leftovers_are_swept(tmp_path: Path, model_dir: Path) -> None:
    """A writer removes the temp folders and files writers stage, never a version folder:
    one the index lacks (a register killed after its rename) keeps its number."""
    reg = LocalRegistry(tmp_path / "reg")
    folder = tmp_path / "reg" / "churn"
    register(reg, model_dir)
    (folder / ".tmp-dead").mkdir()
    (folder / ".registry.json.abc.tmp").write_bytes(b"")
    (folder / "1" / ".version.json.abc.tmp").write_bytes(b"")
    shutil.copytree(folder / "1", folder / "2")  # renamed into place, never named in the index
    record = json.loads((folder / "2" / "version.json").read_text())
    (folder / "2" / "version.json").write_text(json.dumps({**record, "version": 2}))
    (folder / "5").mkdir()  # a folder this registry never wrote
    (folder / "5" / "notes.txt").write_text("mine")
    assert reg.unindexed("churn") == [2, 5]
    assert register(reg, model_dir).version == 6
    assert not (folder / ".tmp-dead").exists()
    assert not (folder / ".registry.json.abc.tmp").exists()
    assert not (folder / "1" / ".version.json.abc.tmp").exists()
    assert (folder / "2" / "model.json").is_file() and (folder / "5" / "notes.txt").is_file()
    report = reg.repair("churn")
    assert report.versions == [1, 2, 6] and report.index_problem is None
    assert len(report.problems) == 1 and f"{folder / '5' / 'version.json'}" in report.problems[0]
    assert (folder / "5" / "notes.txt").is_file()
    assert reg.get("churn", 2).artifact_uri == (folder / "2").as_uri()


def test_lost_index_is_refused_and_repaired(tmp_path: Path, model_dir: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    for _ in range(3):
        register(reg, model_dir)
    reg.set_status("churn", 2, "Rejected")
    before = reg.versions("churn")
    index = tmp_path / "reg" / "churn" / "registry.json"
    index.unlink()
    for action in (lambda: reg.versions("churn"), lambda: register(reg, model_dir),
                   lambda: reg.set_status("churn", 1, "Rejected")):
        with pytest.raises(StateFileError) as err:
            action()
        assert str(err.value).startswith(f"{index}: is missing, but version folders 1, 2, 3")
        assert "mlops-kit registry repair" in str(err.value)
    assert sorted(p.name for p in index.parent.iterdir() if p.name.isdigit()) == ["1", "2", "3"]
    report = reg.repair("churn")
    assert report.versions == [1, 2, 3] and not report.problems and not report.restored
    assert reg.versions("churn") == before
    assert register(reg, model_dir).version == 4


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "is empty"),
    (b"\n  ", "is empty"),
    (b'{"model": "churn", "versions": [{"vers', "is not valid JSON"),
    (b"\xff\xfe garbage", "is not UTF-8"),
    (b"[1, 2]", "wrong shape"),
    (b'{"model": "other", "versions": []}', "index of model 'other'"),
    (b'{"model": "churn", "versions": [{"version": 1, "model": "churn"}]}',
     "versions[0] has status None"),
    (b'{"model": "churn", "versions": [{"version": "1"}]}', "versions[0] has no valid"),
])
def test_corrupt_index_is_one_clear_error_and_repairable(
        tmp_path: Path, model_dir: Path, content: bytes, problem: str) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    register(reg, model_dir, run="r1")
    index = tmp_path / "reg" / "churn" / "registry.json"
    index.write_bytes(content)
    with pytest.raises(StateFileError) as err:
        reg.get("churn", 1)
    message = str(err.value)
    assert message.startswith(f"{index}: ") and problem in message and "\n" not in message
    assert "mlops-kit registry repair" in message
    report = reg.repair("churn")
    assert report.index_problem and problem in report.index_problem
    assert reg.get("churn", 1).lineage == {"run": "r1"}


def test_corrupt_version_json_is_restored_from_the_index(tmp_path: Path,
                                                          model_dir: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    register(reg, model_dir, run="r1")
    register(reg, model_dir, run="r2")
    folder = tmp_path / "reg" / "churn"
    (folder / "1" / "version.json").write_text('{"model": "churn", "vers')  # truncated
    (folder / "2" / "version.json").write_text('{"model": "churn", "version": 9}')
    report = reg.repair("churn")
    assert report.restored == [1, 2] and not report.problems
    assert json.loads((folder / "1" / "version.json").read_text())["lineage"] == {"run": "r1"}
    (folder / "2" / "version.json").write_bytes(b"")
    (folder / "registry.json").unlink()  # now nothing can tell what version 2 was
    report = reg.repair("churn")
    assert report.versions == [1] and report.index_problem
    assert report.problems == [
        f"{folder / '2' / 'version.json'}: is empty (0 bytes). Restore it from a backup, or "
        "move the folder out of the registry (version 2 is left out of the index)"]
    assert (folder / "2" / "model.json").is_file()
    assert register(reg, model_dir).version == 3


def test_each_version_records_its_digest_and_files(tmp_path: Path, model_dir: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    v = register(reg, model_dir)
    assert v.digest == model_digest(model_dir)["digest"] == v.expected_digest
    assert set(v.files) == {"extra/features.txt", "model.json"}
    assert v.files["model.json"]["bytes"] == len('{"trees": 3}')
    stored = json.loads((tmp_path / "reg" / "churn" / "1" / "version.json").read_text())
    assert stored["digest"] == v.digest and stored["files"] == v.files
    assert reg.verify(v) is None
    (tmp_path / "reg" / "churn" / "1" / "model.json").write_text('{"tre')
    mismatch = reg.verify(v)
    assert mismatch == Mismatch("model.json", "digest mismatch", "5 bytes, expected 12")
    with pytest.raises(RegistryError, match="files changed after model_digest"):
        register(reg, model_dir, model_digest="0" * 64)


def test_repair_gives_older_versions_a_digest(tmp_path: Path, model_dir: Path) -> None:
    """Records from before per-version digests: the lineage's model_digest where there is
    one (so a file changed since shows), else the files as they are."""
    reg = LocalRegistry(tmp_path / "reg")
    register(reg, model_dir)
    register(reg, model_dir)
    folder = tmp_path / "reg" / "churn"
    index = json.loads((folder / "registry.json").read_text())
    for record in index["versions"]:
        del record["digest"], record["files"]
        (folder / str(record["version"]) / "version.json").write_text(json.dumps(record))
    index["versions"][1]["lineage"] = {"model_digest": "f" * 64}
    (folder / "2" / "version.json").write_text(json.dumps(index["versions"][1]))
    del index["format"]
    (folder / "registry.json").write_text(json.dumps(index))
    assert reg.verify(reg.get("churn", 1)) is None  # nothing to check against yet
    report = reg.repair("churn")
    assert report.digested == [1]
    assert reg.get("churn", 1).digest == model_digest(model_dir)["digest"]
    assert reg.verify(reg.get("churn", 2)) == Mismatch(
        None, "digest mismatch", f"the files do not match model_digest {'f' * 12} "
                                 f"(they give {model_digest(model_dir)['digest'][:12]})")


def test_concurrent_writers_get_distinct_versions(tmp_path: Path, model_dir: Path) -> None:
    root = tmp_path / "reg"

    def one(i: int) -> tuple[int, str]:
        v = LocalRegistry(root).register("churn", model_dir, status="Approved",
                                         metrics={"i": i}, params={}, lineage={"run": f"r{i}"})
        return v.version, v.lineage["run"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(8)))
    assert sorted(n for n, _ in results) == list(range(1, 9))
    stored = {v.version: v.lineage["run"] for v in LocalRegistry(root).versions("churn")}
    assert stored == dict(results)


def test_open_registry_uses_the_state_dir(tmp_path: Path, model_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mlops.yaml").write_text(CONFIG)
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    reg = open_registry(load_config(tmp_path / "mlops.yaml"))
    assert isinstance(reg, LocalRegistry)
    assert reg.root == (tmp_path / "state" / "registry").resolve()
    register(reg, model_dir)
    assert (tmp_path / "state" / "registry" / "churn" / "registry.json").is_file()
