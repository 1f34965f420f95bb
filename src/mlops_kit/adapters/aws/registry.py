"""The model registry on the SageMaker Model Registry: one model package group per model.

A version's files go to `s3://<bucket>/models/<group>/<n>/model.tar.gz`; next to it,
`baseline/` holds the training baseline (for Model Monitor) and `metadata.json` keeps the full
metrics, params, lineage and description. The package carries a
flattened, truncated copy in `CustomerMetadataProperties` (SageMaker allows 50 entries, keys of
128 and values of 256 characters) plus the metadata URI, so nothing is lost.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from mlops_kit.adapters.aws import naming
from mlops_kit.adapters.aws.storage import ensure_bucket, split_uri
from mlops_kit.config import LoadedConfig
from mlops_kit.registry.base import (
    ModelVersion,
    RegistryError,
    Status,
    backend_options,
    errors_as_registry_error,
    model_files,
)
from mlops_kit.registry.local import check_status

CONTENT_TYPES = ["text/csv", "application/json"]
METADATA_PROPERTY = "mlops.metadata_uri"
MAX_PROPERTIES, MAX_KEY, MAX_VALUE, MAX_DESCRIPTION = 50, 128, 256, 1024
_CLAIM_ATTEMPTS = 50
# from_config options: a boto3 `session`, ready `sagemaker_client` / `s3_client`, the artifacts
# `bucket`, the inference `image`, and `client_config` (a botocore Config for new clients).
_OPTIONS = frozenset({"session", "sagemaker_client", "s3_client", "bucket", "image",
                      "client_config"})
_ALLOWED_PUNCTUATION = set("_.:/=+-@")

# Accounts that publish the SageMaker XGBoost framework images (sagemaker-xgboost 1.x) in the
# common commercial regions, as listed by the SageMaker Python SDK (image_uri_config/xgboost.json).
# Other regions: set `serving.image` in the config.
XGBOOST_IMAGE_ACCOUNTS = {
    "us-east-1": "683313688378", "us-east-2": "257758044811", "us-west-1": "746614075791",
    "us-west-2": "246618743249", "ca-central-1": "341280168497", "sa-east-1": "737474898029",
    "eu-west-1": "141502667606", "eu-west-2": "764974769150", "eu-west-3": "659782779980",
    "eu-central-1": "492215442770", "eu-north-1": "662702820516", "eu-south-1": "978288397137",
    "ap-northeast-1": "354813040037", "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886", "ap-south-1": "720646828776",
    "ap-southeast-1": "121021644041", "ap-southeast-2": "783357654285",
    "ap-east-1": "651117190479", "me-south-1": "801668240914", "af-south-1": "510948584623",
}


def xgboost_image(region: str, version: str = "1.7-1") -> str:
    """The public SageMaker XGBoost inference image of `region`; ValueError if unknown."""
    account = XGBOOST_IMAGE_ACCOUNTS.get(region)
    if account is None:
        raise ValueError(
            f"no known SageMaker XGBoost image for region {region!r}; set serving.image in the "
            "config to the inference image URI"
        )
    return f"{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:{version}"


def metadata_properties(metrics: dict[str, float], params: dict[str, Any],
                        lineage: dict[str, Any], metadata_uri: str) -> dict[str, str]:
    """CustomerMetadataProperties: the metadata URI, then metrics, params and lineage, clipped."""
    props = {METADATA_PROPERTY: _clean(metadata_uri, MAX_VALUE)}
    items = [*_flat("metric", metrics), *_flat("param", params), *_flat("lineage", lineage)]
    for raw_key, raw_value in items:
        if len(props) >= MAX_PROPERTIES:
            break
        key, value = _clean(raw_key, MAX_KEY), _clean(raw_value, MAX_VALUE)
        if value and key not in props:
            props[key] = value
    return props


def _flat(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    """(dotted key, text) pairs of a nested value; lists become space-separated text."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flat(f"{prefix}.{key}", item)
    elif isinstance(value, list | tuple):
        yield prefix, " ".join(str(v) for v in value)
    else:
        yield prefix, str(value)


def _clean(text: str, limit: int) -> str:
    """`text` in SageMaker's metadata alphabet (others become '_'), cut to `limit` with '...'."""
    out = "".join(
        c if unicodedata.category(c)[0] in "LNZ" or c in _ALLOWED_PUNCTUATION else "_"
        for c in text
    )
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _description(text: str) -> str:
    """A ModelPackageDescription: no control characters, at most 1024 characters."""
    out = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    return out[:MAX_DESCRIPTION]


def _code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _aws_errors(action: str) -> AbstractContextManager[None]:
    """AWS client errors and invalid names as RegistryError naming the action."""
    return errors_as_registry_error(action, ClientError, ValueError)


BASELINE_FILES = ("statistics.json", "constraints.json")


class SageMakerRegistry:
    """The `Registry` protocol on SageMaker model package groups, artifacts in S3."""

    def __init__(self, sagemaker: Any, s3: Any, bucket: str, project: str, image: str) -> None:
        self.sagemaker = sagemaker
        self.s3 = s3
        self.bucket = bucket
        self.project = project
        self.image = image

    @classmethod
    def from_config(cls, loaded: LoadedConfig, **options: Any) -> SageMakerRegistry:
        """A registry for the config's AWS target (see `_OPTIONS` for the accepted options)."""
        options = backend_options(options, _OPTIONS, "SageMakerRegistry")
        account, region = naming.aws_target(loaded)
        sagemaker, s3 = _clients(region, options)
        bucket = options.get("bucket") or naming.artifacts_bucket(loaded.config.project,
                                                                  account, region)
        ensure_bucket(s3, bucket, region)
        image = options.get("image") or loaded.config.serving.image
        if not image and loaded.config.model.framework != "xgboost":
            raise ValueError(
                f"model.framework {loaded.config.model.framework!r} has no default SageMaker "
                "inference image: set serving.image to the image URI that serves it")
        image = image or xgboost_image(region)
        return cls(sagemaker, s3, bucket=bucket, project=loaded.config.project, image=image)

    def register(self, model: str, model_dir: Path, *, status: Status,
                 metrics: dict[str, float], params: dict[str, Any],
                 lineage: dict[str, Any], description: str = "") -> ModelVersion:
        """Upload `model_dir` as model.tar.gz plus metadata.json and create a model package."""
        check_status(status)
        files = model_files(Path(model_dir))
        document = {"model": model, "metrics": {k: float(v) for k, v in metrics.items()},
                    "params": params, "lineage": lineage, "description": description}
        # A cloud back-end knows no state folder (it may run in a job container): OS temp.
        with _aws_errors(f"register {model}"), tempfile.TemporaryDirectory() as tmp:
            group = self._ensure_group(model)
            tarball = _pack(files, Path(tmp) / "model.tar.gz")
            prefix = self._claim(group, document)
            try:
                self.s3.upload_file(str(tarball), self.bucket, f"{prefix}/model.tar.gz")
                for name in BASELINE_FILES:  # beside the tarball too: Model Monitor reads them
                    if (Path(model_dir) / "baseline" / name).is_file():
                        self.s3.upload_file(str(Path(model_dir) / "baseline" / name),
                                            self.bucket, f"{prefix}/baseline/{name}")
                arn = self._create_package(group, prefix, status, document)
            except BaseException:
                self._forget(prefix)
                raise
            return self._version(model, self._describe(arn))

    def versions(self, model: str) -> list[ModelVersion]:
        """All versions of `model`, oldest first (empty if the model is unknown)."""
        with _aws_errors(f"list versions of {model}"):
            group = naming.model_package_group(self.project, model)
            if not self._group_exists(group):
                return []
            return [self._version(model, self._describe(s["ModelPackageArn"]))
                    for s in self._summaries(group)]

    def get(self, model: str, version: int) -> ModelVersion:
        """One version; RegistryError if the model or the version does not exist."""
        with _aws_errors(f"get {model} version {version}"):
            arn = self._summary(model, version)["ModelPackageArn"]
            return self._version(model, self._describe(arn))

    def set_status(self, model: str, version: int, status: Status) -> ModelVersion:
        """Set a version's ModelApprovalStatus with UpdateModelPackage and return it."""
        check_status(status)
        with _aws_errors(f"set status of {model} version {version}"):
            arn = self._summary(model, version)["ModelPackageArn"]
            kwargs: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
            # Real AWS leaves properties that are not sent alone; moto 5 drops them all, so
            # send the current ones back unchanged (a no-op on AWS).
            props = self._describe(arn).get("CustomerMetadataProperties")
            if props:
                kwargs["CustomerMetadataProperties"] = props
            self.sagemaker.update_model_package(**kwargs)
            return self._version(model, self._describe(arn))

    def download(self, model: str, version: int, dest: Path) -> Path:
        """Download the version's model.tar.gz and unpack it into `dest` (created)."""
        found = self.get(model, version)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        with _aws_errors(f"download {model} version {version}"), \
                tempfile.TemporaryDirectory() as tmp:  # no state folder known (see register)
            bucket, key = split_uri(found.artifact_uri)
            tarball = Path(tmp) / "model.tar.gz"
            self.s3.download_file(bucket, key, str(tarball))
            _unpack(tarball, dest)
        return dest

    def _ensure_group(self, model: str) -> str:
        """The model's package group, created if missing."""
        group = naming.model_package_group(self.project, model)
        if self._group_exists(group):
            return group
        try:
            self.sagemaker.create_model_package_group(
                ModelPackageGroupName=group,
                ModelPackageGroupDescription=_description(
                    f"Versions of model {model} of project {self.project} (mlops-kit)"),
            )
        except ClientError:
            if not self._group_exists(group):  # not just created by another writer
                raise
        return group

    def _group_exists(self, group: str) -> bool:
        try:
            self.sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if _code(exc) == "ResourceNotFound" or "does not exist" in message:
                return False
            raise
        return True

    def _summaries(self, group: str) -> list[dict[str, Any]]:
        """The group's versioned package summaries, by version ascending."""
        pages = self.sagemaker.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=group
        )
        found = [s for page in pages for s in page.get("ModelPackageSummaryList", [])
                 if s.get("ModelPackageVersion") is not None]
        return sorted(found, key=lambda s: int(s["ModelPackageVersion"]))

    def _summary(self, model: str, version: int) -> dict[str, Any]:
        """The summary of one version; RegistryError if the model or version is unknown."""
        group = naming.model_package_group(self.project, model)
        if not self._group_exists(group):
            raise RegistryError(
                f"model {model!r} is not registered (no SageMaker model package group {group!r})"
            )
        summaries = self._summaries(group)
        for summary in summaries:
            if int(summary["ModelPackageVersion"]) == version:
                return summary
        numbers = ", ".join(str(s["ModelPackageVersion"]) for s in summaries) or "none"
        raise RegistryError(f"model {model!r} has no version {version} (versions: {numbers})")

    def _describe(self, arn: str) -> dict[str, Any]:
        result: dict[str, Any] = self.sagemaker.describe_model_package(ModelPackageName=arn)
        return result

    def _claim(self, group: str, document: dict[str, Any]) -> str:
        """Reserve `models/<group>/<n>` by creating its metadata.json only if absent."""
        body = json.dumps(document, indent=2, sort_keys=True, default=str).encode()
        summaries = self._summaries(group)
        number = int(summaries[-1]["ModelPackageVersion"]) + 1 if summaries else 1
        for _ in range(_CLAIM_ATTEMPTS):
            prefix = f"models/{group}/{number}"
            try:
                self.s3.put_object(Bucket=self.bucket, Key=f"{prefix}/metadata.json", Body=body,
                                   ContentType="application/json", IfNoneMatch="*")
                return prefix
            except ClientError as exc:
                if _code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                    raise
                number += 1
        raise RegistryError(f"no free artifact folder under s3://{self.bucket}/models/{group}/")

    def _forget(self, prefix: str) -> None:
        """Best-effort removal of a failed registration's objects."""
        keys = [{"Key": f"{prefix}/metadata.json"}, {"Key": f"{prefix}/model.tar.gz"}]
        with suppress(ClientError):
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})

    def _create_package(self, group: str, prefix: str, status: Status,
                        document: dict[str, Any]) -> str:
        """CreateModelPackage for the uploaded artifacts; returns its ARN."""
        metadata_uri = f"s3://{self.bucket}/{prefix}/metadata.json"
        result = self.sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=_description(document["description"]),
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": self.image,
                                "ModelDataUrl": f"s3://{self.bucket}/{prefix}/model.tar.gz"}],
                "SupportedContentTypes": CONTENT_TYPES,
                "SupportedResponseMIMETypes": CONTENT_TYPES,
            },
            CustomerMetadataProperties=metadata_properties(
                document["metrics"], document["params"], document["lineage"], metadata_uri),
            ClientToken=uuid.uuid4().hex,
        )
        return str(result["ModelPackageArn"])

    def _version(self, model: str, described: dict[str, Any]) -> ModelVersion:
        """A ModelVersion from DescribeModelPackage plus the version's metadata.json."""
        data_url = described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
        props = described.get("CustomerMetadataProperties") or {}
        sibling = f"{data_url.rsplit('/', 1)[0]}/metadata.json"
        metadata_uri = props.get(METADATA_PROPERTY) or sibling
        document = self._read_metadata(metadata_uri) or _from_properties(props)
        created = described.get("CreationTime", "")
        if isinstance(created, datetime):
            created = created.astimezone(UTC).isoformat()
        return ModelVersion(
            model=model, version=int(described["ModelPackageVersion"]),
            status=described.get("ModelApprovalStatus", "PendingManualApproval"),
            artifact_uri=data_url, metrics=dict(document.get("metrics", {})),
            params=dict(document.get("params", {})), lineage=dict(document.get("lineage", {})),
            created=str(created),
            description=document.get("description", described.get("ModelPackageDescription", "")),
        )

    def _read_metadata(self, uri: str) -> dict[str, Any] | None:
        """The JSON document at `uri`, or None if it is gone."""
        bucket, key = split_uri(uri)
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        document: dict[str, Any] = json.loads(body)
        return document


def _clients(region: str, options: dict[str, Any]) -> tuple[Any, Any]:
    """The SageMaker and S3 clients: given ones, else from the given or a new boto3 Session."""
    sagemaker, s3 = options.get("sagemaker_client"), options.get("s3_client")
    if sagemaker is None or s3 is None:
        session = options.get("session") or boto3.Session(region_name=region)
        config = options.get("client_config")
        sagemaker = sagemaker or session.client("sagemaker", region_name=region, config=config)
        s3 = s3 or session.client("s3", region_name=region, config=config)
    return sagemaker, s3


def _from_properties(props: dict[str, str]) -> dict[str, Any]:
    """Metrics, params and lineage recovered from the (clipped) properties, if metadata is lost."""
    out: dict[str, dict[str, Any]] = {"metrics": {}, "params": {}, "lineage": {}}
    sections = {"metric.": "metrics", "param.": "params", "lineage.": "lineage"}
    for key, value in props.items():
        for prefix, section in sections.items():
            if key.startswith(prefix):
                out[section][key[len(prefix):]] = value
    metrics: dict[str, Any] = {}
    for key, value in out["metrics"].items():
        try:
            metrics[key] = float(value)
        except ValueError:
            continue
    return {**out, "metrics": metrics}


def _pack(files: dict[str, Path], tarball: Path) -> Path:
    """Write `files` into a gzipped tarball, paths relative to the model folder."""
    with tarfile.open(tarball, "w:gz") as tar:
        for rel, path in files.items():
            tar.add(path, arcname=rel, recursive=False)
    return tarball


def _unpack(tarball: Path, dest: Path) -> None:
    """Extract `tarball` into `dest`, refusing links and paths that leave `dest`."""
    with tarfile.open(tarball, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
            return
        root = dest.resolve()
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not (member.isfile() or member.isdir()) or root not in [target, *target.parents]:
                raise RegistryError(f"unsafe entry {member.name!r} in {tarball}")
        tar.extractall(dest)
