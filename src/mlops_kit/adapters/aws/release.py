"""What the delivery pipeline runs against AWS around `cdk deploy` (boto3; tested on moto).

    python -m mlops_kit.adapters.aws.release train --env dev --wait
    python -m mlops_kit.adapters.aws.release approved --env staging --out releases.json
    python -m mlops_kit.adapters.aws.release smoke --env staging

`train` starts every model's training pipeline (and waits for them with `--wait`). `approved`
writes, for every model of the config, the newest Approved package of its group:
the file the CDK app reads (`-c releases=releases.json`) to build the endpoints. `smoke` sends
a few schema-valid rows to each endpoint and checks that every row gets a prediction.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from mlops_kit.adapters.aws import naming
from mlops_kit.adapters.aws.storage import split_uri
from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.config.model import Column, ProjectConfig
from mlops_kit.serving.endpoint import endpoint_name


class ReleaseError(Exception):
    """A release cannot go on; the message says what is missing or wrong."""


def latest_approved(sagemaker: Any, group: str) -> str | None:
    """The ARN of the newest Approved package of `group`, or None."""
    found = sagemaker.list_model_packages(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved",
        SortBy="CreationTime", SortOrder="Descending", MaxResults=1,
    )["ModelPackageSummaryList"]
    return found[0]["ModelPackageArn"] if found else None


def model_data_url(sagemaker: Any, package_arn: str) -> str | None:
    """The package's model files (None for a package whose image holds the model)."""
    described = sagemaker.describe_model_package(ModelPackageName=package_arn)
    url = described["InferenceSpecification"]["Containers"][0].get("ModelDataUrl")
    return str(url) if url else None


def baseline_uri(s3: Any, data_url: str) -> str | None:
    """`s3://.../baseline/` beside the model files, if the baseline is there."""
    bucket, key = split_uri(data_url.rsplit("/", 1)[0] + "/baseline")
    found = s3.list_objects_v2(Bucket=bucket, Prefix=f"{key}/").get("Contents", [])
    names = {o["Key"].rsplit("/", 1)[1] for o in found}
    return f"s3://{bucket}/{key}/" if {"statistics.json", "constraints.json"} <= names else None


def releases(loaded: LoadedConfig, sagemaker: Any, *, require: bool,
             s3: Any = None) -> dict[str, Any]:
    """`{env: {model: {"package_arn", "baseline_uri"}}}` for the models with an approved
    version (the baseline when `s3` is given and the version has one)."""
    out: dict[str, Any] = {}
    missing = []
    for model in loaded.config.all_models:
        group = naming.model_package_group(loaded.config.project, model.name)
        arn = latest_approved(sagemaker, group)
        if arn is None:
            missing.append(group)
        else:
            out[model.name] = {"package_arn": arn}
            if data_url := model_data_url(sagemaker, arn):
                out[model.name]["model_data_url"] = data_url  # served across accounts
                if s3 is not None and (baseline := baseline_uri(s3, data_url)):
                    out[model.name]["baseline_uri"] = baseline
    if missing and require:
        raise ReleaseError(f"no Approved package in {', '.join(missing)}: approve a version "
                           "(mlops-kit registry approve, or in SageMaker Studio) first")
    return {str(loaded.env): out}


DONE = {"Succeeded", "Failed", "Stopped"}


def train(sagemaker: Any, loaded: LoadedConfig, *, wait: bool, poll_s: float = 30.0,
          timeout_s: float = 6 * 3600) -> dict[str, str]:
    """Start each model's pipeline; with `wait`, ReleaseError unless all succeed."""
    started = {}
    for model in loaded.config.all_models:
        name = naming.model_package_group(loaded.config.project, model.name)
        try:
            started[name] = sagemaker.start_pipeline_execution(
                PipelineName=name,
                PipelineExecutionDescription=f"mlops-kit release ({loaded.env})",
            )["PipelineExecutionArn"]
        except ClientError as exc:
            stacks = naming.cdk_selector(loaded.config.project, str(loaded.env))
            raise ReleaseError(f"cannot start pipeline {name}: {exc} (deploy the environment "
                               f"first: npx cdk deploy -c env={loaded.env} '{stacks}')") from exc
    if not wait:
        return {n: "Executing" for n in started}
    status: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while len(status) < len(started):
        for name, arn in started.items():
            now = sagemaker.describe_pipeline_execution(
                PipelineExecutionArn=arn)["PipelineExecutionStatus"]
            if now in DONE:
                status[name] = now
        if len(status) < len(started):
            if time.monotonic() > deadline:
                raise ReleaseError(f"pipelines still running after {timeout_s:.0f} s: "
                                   f"{sorted(set(started) - set(status))}")
            time.sleep(poll_s)
    failed = {n: s for n, s in status.items() if s != "Succeeded"}
    if failed:
        raise ReleaseError(f"training pipelines did not succeed: {failed}")
    return status


def sample_rows(config: ProjectConfig, count: int = 3) -> list[dict[str, Any]]:
    """`count` rows every column accepts (the target left out)."""
    columns = [c for c in config.table.columns if c.name != config.table.target]
    return [{c.name: _value(c, i) for c in columns} for i in range(count)]


def _value(column: Column, i: int) -> Any:
    if column.type == "category":
        cats = column.categories or []
        return cats[i % len(cats)]
    if column.type in ("int", "float"):
        low = column.min if column.min is not None else 0.0
        high = column.max if column.max is not None else low + 100.0
        value = low + (high - low) * (i + 1) / 4
        return int(value) if column.type == "int" else round(value, 3)
    if column.type == "bool":
        return bool(i % 2)
    if column.type == "timestamp":
        return (dt.datetime(2025, 1, 1) + dt.timedelta(days=i)).isoformat()
    return f"smoke-{i}"


def smoke_test(runtime: Any, endpoint: str, config: ProjectConfig) -> dict[str, Any]:
    """Invoke `endpoint` with sample rows; ReleaseError unless each row gets a prediction."""
    rows = sample_rows(config)
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="application/json", Accept="application/json",
            Body=json.dumps({"instances": rows}).encode())
    except Exception as exc:  # botocore's ClientError and connection errors alike
        raise ReleaseError(f"smoke test of {endpoint}: the request failed: {exc}") from exc
    body = response["Body"].read()
    try:
        predictions = json.loads(body)["predictions"]
    except (ValueError, KeyError, TypeError):
        raise ReleaseError(f"smoke test of {endpoint}: not a predictions document: "
                           f"{body[:200]!r}") from None
    if not isinstance(predictions, list) or len(predictions) != len(rows):
        raise ReleaseError(f"smoke test of {endpoint}: {len(rows)} rows sent, "
                           f"{len(predictions) if isinstance(predictions, list) else 0} "
                           "predictions back")
    return {"endpoint": endpoint, "rows": len(rows), "predictions": predictions}


def assume(session: Any, role_arn: str, region: str) -> Any:
    """A session with the credentials of `role_arn` (another environment's account)."""
    creds = session.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName="mlops-kit-smoke-test")["Credentials"]
    return type(session)(aws_access_key_id=creds["AccessKeyId"],
                         aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=region)


def main(argv: list[str] | None = None, session: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_kit.adapters.aws.release")
    parser.add_argument("command", choices=["train", "approved", "smoke"])
    parser.add_argument("--config", default="mlops.yaml")
    parser.add_argument("--env", required=True)
    parser.add_argument("--out", help="approved: where to write the releases file")
    parser.add_argument("--require", action="store_true",
                        help="approved: fail unless every model has an approved version")
    parser.add_argument("--wait", action="store_true", help="train: until every run ends")
    parser.add_argument("--role-arn", help="smoke: the environment's smoke-test role")
    args = parser.parse_args(argv)
    try:
        loaded = load_config(args.config, env=args.env)
        _, region = naming.aws_target(loaded)
        if args.command == "approved":  # the versions live in the home environment's registry
            region = loaded.config.environments[naming.home_environment(loaded.config)].region
        if session is None:
            import boto3

            session = boto3.Session(region_name=region)
        result: Any
        if args.command == "train":
            result = train(session.client("sagemaker"), loaded, wait=args.wait)
        elif args.command == "approved":
            result = releases(loaded, session.client("sagemaker"), require=args.require,
                              s3=session.client("s3"))
            if args.out:
                Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        else:
            if args.role_arn:
                session = assume(session, args.role_arn, region)
            runtime = session.client("sagemaker-runtime")
            result = [smoke_test(runtime, endpoint_name(loaded.config.project, m.name),
                                 loaded.config) for m in loaded.config.all_models]
    except (ConfigError, ReleaseError, ValueError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
