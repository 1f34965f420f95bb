"""The lake: raw is append-only, the catalog is checked on read and rebuilt from the folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from mlops_kit.config import LoadedConfig, load_config
from mlops_kit.errors import StateFileError
from mlops_kit.runtime.files import JsonCatalog
from mlops_kit.runtime.lake import query, rebuild_catalog
from mlops_kit.runtime.runner import RunResult, run_pipeline
from tests.conftest import ROOT, write_config

DAG = ROOT / "src" / "mlops_kit" / "pipelines" / "training.yaml"

DAY = "2026-02-03"


def ingest_validate(tmp_path: Path, seed: int) -> LoadedConfig:
    """A config whose pipeline is ingest and validate only (real steps, fast)."""
    pipeline = yaml.safe_load(DAG.read_text())
    pipeline["steps"] = pipeline["steps"][:2]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(pipeline))
    folder = tmp_path / f"seed{seed}"
    folder.mkdir(exist_ok=True)
    return load_config(write_config(folder, {"pipeline": str(tmp_path / "p.yaml"), "data": {
        "source": {"rows": 300, "seed": seed, "dirty_fraction": 0.02}}}))


def run_day(loaded: LoadedConfig, **kw: Any) -> RunResult:
    return run_pipeline(loaded, params={"ingest_date": DAY}, **kw)


def raw_files(loaded: LoadedConfig) -> dict[str, bytes]:
    part = loaded.state_dir / "lake" / "raw" / "raw_customers" / f"ingest_date={DAY}"
    return {p.name: p.read_bytes() for p in sorted(part.iterdir())}


def test_same_day_reingest_appends_a_batch_and_the_same_data_is_a_no_op(
        tmp_path: Path) -> None:
    first, other = ingest_validate(tmp_path, 7), ingest_validate(tmp_path, 8)
    one = run_day(first)
    kept = raw_files(first)
    assert len(kept) == 1
    two = run_day(other)
    files = raw_files(first)
    assert len(files) == 2 and all(files[name] == data for name, data in kept.items())
    for result in (one, two):  # each run validates its own batch only: the rows reconcile
        summary = result.step("validate").summary
        assert summary["rows_in"] == 300 == summary["valid"] + summary["quarantined"]
    assert int(query(first, f"SELECT count(*) AS n FROM raw_customers WHERE ingest_date = "
                            f"'{DAY}'")["n"][0]) == 600
    run_day(first, use_cache=False)  # the same data again: nothing added, nothing replaced
    assert raw_files(first) == files
    data_version = one.step("ingest").outputs["raw"]["data_version"]
    assert any(name.startswith(f"part-{data_version[:16]}") for name in files)


BAD = {"garbled": b"{\"tables\": {\"x\": [1, 2", "empty": b"", "binary": b"\xff\xfe\x00",
       "wrong shape": b"[1, 2, 3]", "wrong record": b'{"tables": {"a.b": {"name": 1}}}'}


@pytest.mark.parametrize("content", BAD.values(), ids=BAD.keys())
def test_a_corrupt_catalog_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "catalog.json"
    path.write_bytes(content)
    with pytest.raises(StateFileError) as err:
        JsonCatalog(path).tables("churn")
    text = str(err.value)
    assert str(path) in text and "mlops-kit lake repair" in text and "\n" not in text


def test_repair_rebuilds_the_catalog_from_the_folders(tmp_path: Path) -> None:
    loaded = ingest_validate(tmp_path, 7)
    run_day(loaded)
    path = loaded.state_dir / "catalog.json"
    before = json.loads(path.read_text())
    path.write_text(path.read_text()[:40])  # truncated
    env = {"MLOPS_STATE_DIR": str(loaded.state_dir), "PYTHONPATH": str(ROOT / "src"),
           "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "mlops_kit.cli"]
    failed = subprocess.run([*cli, "query", "SELECT 1", "--config", str(loaded.path)],
                            env=env, capture_output=True, text=True)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert str(path) in failed.stderr and "lake repair" in failed.stderr
    fixed = subprocess.run([*cli, "lake", "repair", "--config", str(loaded.path)],
                           env=env, capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(path.read_text()) == before
    assert len(list(path.parent.glob("catalog.json.corrupt-*"))) == 1


def test_a_run_repairs_a_corrupt_catalog_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    loaded = ingest_validate(tmp_path, 7)
    run_day(loaded)
    (loaded.state_dir / "catalog.json").write_bytes(b"")
    with caplog.at_level("WARNING"):
        run_day(loaded)
    assert "catalog.json: is empty (0 bytes); rebuilt it" in caplog.text
    assert {t.name for t in JsonCatalog(loaded.state_dir / "catalog.json").tables("churn")} == {
        "raw_customers", "curated_customers", "quarantine_customers"}


def test_rebuild_skips_half_written_folders(tmp_path: Path) -> None:
    loaded = ingest_validate(tmp_path, 7)
    run_day(loaded)
    table = loaded.state_dir / "lake" / "raw" / "raw_customers"
    (table / ".ingest_date=2026-09-09.99999999.ab.stage").mkdir()
    [spec] = [t for t in rebuild_catalog(loaded) if t.name == "raw_customers"]
    assert spec.partitions == ({"ingest_date": DAY},)
    assert pq.read_schema(next((table / f"ingest_date={DAY}").iterdir())).names[0] == \
        "_source_row"


@pytest.mark.usefixtures("aws")
def test_the_cloud_job_appends_to_the_raw_zone_too(tmp_path: Path) -> None:
    import boto3

    from mlops_kit.runtime import job

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lake-raw")
    config = write_config(tmp_path, {"data": {"source": {"rows": 200}}})
    for seed in (7, 8, 7):
        out = tmp_path / f"raw{seed}"
        assert job.main(["ingest", "--config", str(config), "--set", f"data.source.seed={seed}",
                         "--output", f"raw={out}", "--param", f"ingest_date={DAY}",
                         "--publish", "raw=s3://lake-raw/raw_customers"]) == 0
    listed = s3.list_objects_v2(Bucket="lake-raw", Prefix=f"raw_customers/ingest_date={DAY}/")
    names = sorted(o["Key"].rsplit("/", 1)[1] for o in listed["Contents"])
    assert len(names) == 2 and all(n.startswith("part-") for n in names)
