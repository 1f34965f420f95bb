"""The file-backed model registry: numbering, statuses, errors, atomicity and concurrency."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest

from mlops_kit.config import load_config
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


def test_leftovers_of_a_crashed_writer_are_swept(tmp_path: Path, model_dir: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    folder = tmp_path / "reg" / "churn"
    (folder / "1").mkdir(parents=True)
    (folder / "1" / "half.bin").write_text("partial")
    (folder / ".tmp-dead").mkdir()
    assert reg.versions("churn") == []
    v1 = register(reg, model_dir)
    assert v1.version == 1
    assert not (folder / "1" / "half.bin").exists() and not (folder / ".tmp-dead").exists()
    assert (folder / "1" / "model.json").is_file()


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
