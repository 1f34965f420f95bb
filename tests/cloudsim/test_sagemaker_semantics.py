"""The SageMaker harness itself, on small hand-written definitions: prefix listing, property
references, property files, conditions, Fail steps and the cache key behave as documented."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cloudsim.container import Image, Sandbox, namespaces_available
from tests.cloudsim.sagemaker import SageMakerPipeline

pytestmark = pytest.mark.skipif(not namespaces_available(),
                                reason="needs user and mount namespaces (unshare -Urm)")
BUCKET = "bucket"
# A processing job that lists its input and writes a JSON verdict and a count file.
LIST = ("import json, os, pathlib; files = sorted(str(p.relative_to('/opt/ml/processing/input/in'))"
        " for p in pathlib.Path('/opt/ml/processing/input/in').rglob('*') if p.is_file());"
        " out = pathlib.Path('/opt/ml/processing/output/out');"
        " (out / 'files.json').write_text(json.dumps({'files': files, 'ok': len(files) > 1}))")


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                          aws_access_key_id="k", aws_secret_access_key="s")
    client.create_bucket(Bucket=BUCKET)
    for key in ("data/a.txt", "data/sub/b.txt", "data2/c.txt", "other/d.txt"):
        client.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    yield client
    server.stop()


def processing(name: str, code: str, source: Any, cache: bool = False) -> dict[str, Any]:
    step: dict[str, Any] = {"Name": name, "Type": "Processing", "Arguments": {
        "AppSpecification": {"ImageUri": "image", "ContainerEntrypoint": ["python", "-c", code]},
        "ProcessingInputs": [{"InputName": "in", "S3Input": {
            "S3Uri": source, "LocalPath": "/opt/ml/processing/input/in",
            "S3DataType": "S3Prefix"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": {"Std:Join": {"On": "/", "Values": [
                f"s3://{BUCKET}/runs", {"Get": "Execution.PipelineExecutionId"}, name]}},
            "LocalPath": "/opt/ml/processing/output/out", "S3UploadMode": "EndOfJob"}}]}},
        "PropertyFiles": [{"PropertyFileName": "Files", "OutputName": "out",
                           "FilePath": "files.json"}]}
    if cache:
        step["CacheConfig"] = {"Enabled": True, "ExpireAfter": "P1D"}
    return step


def pipeline(tmp_path: Path, s3: Any, steps: list[dict[str, Any]]) -> SageMakerPipeline:
    definition = {"Version": "2020-12-01", "Parameters": [
        {"Name": "Source", "Type": "String", "DefaultValue": f"s3://{BUCKET}/data"}],
        "Steps": steps}
    return SageMakerPipeline(definition, name="p", s3=s3, image=Image(tmp_path / "image"),
                             sandbox=Sandbox(tmp_path / "sandbox"), job_env={})


def files(run: Any, s3: Any, step: str) -> list[str]:
    import json

    uri = run.steps[step].properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    key = uri.removeprefix(f"s3://{BUCKET}/") + "/files.json"
    return list(json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["files"])


def test_an_s3_prefix_input_copies_every_key_that_starts_with_it(tmp_path: Path, s3: Any) -> None:
    run = pipeline(tmp_path, s3, [processing("list", LIST, {"Get": "Parameters.Source"})]).start()
    assert run.status == "Succeeded", run.failure
    copied = files(run, s3, "list")
    assert "a.txt" in copied and "sub/b.txt" in copied
    assert any(f.endswith("c.txt") for f in copied)  # data2/ starts with "data" too
    assert not any(f.endswith("d.txt") for f in copied)


def test_property_references_conditions_and_fail_steps(tmp_path: Path, s3: Any) -> None:
    first = processing("first", LIST, f"s3://{BUCKET}/data/")
    second = processing("second", LIST, {"Get": "Steps.first.ProcessingOutputConfig.Outputs"
                                                "['out'].S3Output.S3Uri"})
    verdict = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.first.PropertyFiles.Files"},
                               "Path": "ok"}}
    fail = {"Name": "stop", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
        "On": " ", "Values": ["too few files in", {"Get": "Execution.PipelineExecutionId"}]}}}}
    gate = {"Name": "gate", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "Equals", "LeftValue": verdict, "RightValue": True}],
        "IfSteps": [second], "ElseSteps": [fail]}}
    run = pipeline(tmp_path, s3, [first, gate]).start()
    assert run.status == "Succeeded", run.failure
    assert files(run, s3, "second") == ["files.json"]  # read first's output, by reference
    assert run.steps["stop"].status == "NotExecuted"

    gate["Arguments"]["Conditions"][0]["RightValue"] = False
    run = pipeline(tmp_path, s3, [first, gate]).start()
    assert run.status == "Failed" and run.failure == f"too few files in {run.id}"
    assert run.steps["second"].status == "NotExecuted"


def test_the_cache_key_is_the_inputs_and_the_app_not_the_outputs(tmp_path: Path,
                                                                 s3: Any) -> None:
    step = processing("list", LIST, {"Get": "Parameters.Source"}, cache=True)
    runs = pipeline(tmp_path, s3, [step])
    first, second = runs.start(), runs.start()
    assert not first.steps["list"].cache_hit and second.steps["list"].cache_hit
    assert second.steps["list"].properties == first.steps["list"].properties  # first's outputs
    changed = runs.start({"Source": f"s3://{BUCKET}/other/"})
    assert not changed.steps["list"].cache_hit  # other inputs: it runs again
    assert files(changed, s3, "list") == ["d.txt"]
