"""The optional SDKs and the extra that installs each; a missing one is a one-line error.

The core (`pip install mlops-kit`) runs the whole local lifecycle; everything cloud-side loads
lazily through `require` or under `needs`, which turn a `ModuleNotFoundError` of that SDK into
`MissingExtra`: `<purpose> needs <module>: pip install 'mlops-kit[<extra>]'`. A missing module
that is not one of these (a broken install of the core, say) is left as it is.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from types import ModuleType, TracebackType

from mlops_kit.errors import MlopsKitError

# Import name -> (the requirement in pyproject.toml that installs it, the extras holding that
# requirement; the first is named unless the caller says which fits). tests/test_extras.py
# checks this against pyproject's optional-dependencies both ways.
OPTIONAL: dict[str, tuple[str, tuple[str, ...]]] = {
    "boto3": ("boto3", ("aws", "local-aws")),
    "botocore": ("boto3", ("aws", "local-aws")),
    "aws_cdk": ("aws-cdk-lib", ("aws",)),
    "constructs": ("constructs", ("aws",)),
    "cdk_nag": ("cdk-nag", ("aws",)),
    "moto": ("moto", ("local-aws",)),
    "torch": ("torch", ("pytorch",)),
    "pulumi": ("pulumi", ("azure", "gcp")),
    "pulumi_azure_native": ("pulumi-azure-native", ("azure",)),
    "opentelemetry.exporter.otlp.proto.grpc": ("opentelemetry-exporter-otlp-proto-grpc",
                                               ("azure",)),
    "opentelemetry.instrumentation.grpc": ("opentelemetry-instrumentation-grpc", ("azure",)),
    "pulumi_gcp": ("pulumi-gcp", ("gcp",)),
    "kfp": ("kfp", ("gcp",)),
    "azure.ai.ml": ("azure-ai-ml", ("azureml",)),
    "azure.identity": ("azure-identity", ("azureml",)),
    "azure.core": ("azure-ai-ml", ("azureml",)),
    "azure.storage.blob": ("azure-ai-ml", ("azureml",)),
    "google.cloud.aiplatform": ("google-cloud-aiplatform", ("vertex",)),
    "google.cloud.aiplatform_v1": ("google-cloud-aiplatform", ("vertex",)),
    "google.api_core": ("google-cloud-aiplatform", ("vertex",)),
    "google.auth": ("google-cloud-aiplatform", ("vertex",)),
    "google.protobuf": ("google-cloud-aiplatform", ("vertex",)),
    "google.cloud.storage": ("google-cloud-storage", ("vertex",)),
    "google.cloud.bigquery": ("google-cloud-bigquery", ("vertex",)),
    "cfnlint": ("cfn-lint", ("dev",)),
}


class MissingExtra(MlopsKitError):
    """An optional SDK is not installed; the message names the extra that installs it."""

    kind = "missing extra"
    exit_code = 2

    def __init__(self, purpose: str, module: str, extra: str) -> None:
        self.purpose, self.module, self.extra = purpose, module, extra
        super().__init__(f"{purpose} needs {module}: {pip_install(extra)}")


def pip_install(extra: str) -> str:
    """The command that installs `extra`."""
    return f"pip install 'mlops-kit[{extra}]'"


def install_hint(name: str) -> str:
    """How to install the missing module `name`: its extra's pip command if it is optional."""
    key = optional_module(name)
    return pip_install(OPTIONAL[key][1][0]) if key else f"install {name}"


def _within(name: str, module: str) -> bool:
    """Whether `name` is `module` or one of its parent packages."""
    return module == name or module.startswith(name + ".")


def optional_module(name: str) -> str | None:
    """The key of OPTIONAL that a missing module `name` belongs to (itself, a parent package of
    it, or a package inside it), or None if it is none of the optional SDKs."""
    for key in OPTIONAL:
        if _within(key, name) or _within(name, key):
            return key
    return None


def missing(purpose: str, module: str, extra: str | None = None) -> MissingExtra:
    """The error for `module` (a key of OPTIONAL) missing, naming `extra` or its first extra."""
    extras = OPTIONAL[module][1]
    if extra is not None and extra not in extras:
        raise ValueError(f"{module} is not in extra {extra!r}; it is in {extras}")
    return MissingExtra(purpose, module, extra or extras[0])


def require(module: str, purpose: str, extra: str | None = None) -> ModuleType:
    """Import `module` (a key of OPTIONAL, or a module inside one); MissingExtra if it, or a
    package it lives in, is not installed."""
    key = optional_module(module)
    if key is None:
        raise ValueError(f"{module} is not an optional SDK of mlops-kit")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not _within(exc.name, module):
            raise
        raise missing(purpose, key, extra) from None


@contextlib.contextmanager
def needs(purpose: str, extra: str | None = None) -> Iterator[None]:
    """Imports in the block (e.g. an adapter module that imports its SDK at the top) raise
    MissingExtra when an optional SDK is missing; any other missing module propagates."""
    try:
        yield
    except ModuleNotFoundError as exc:
        key = optional_module(exc.name) if exc.name else None
        if key is None:
            raise
        if extra is not None and extra not in OPTIONAL[key][1]:
            extra = None  # the SDK missing is not the one the caller expected: name its own
        raise missing(purpose, key, extra) from None


def require_at_entry(purpose: str, extra: str, *modules: str) -> None:
    """`require` each of `modules` for an entry point's package (`mlops_cdk`, `mlops_pulumi`):
    if one is missing, MissingExtra, which `python -m` then prints as one line."""
    try:
        for module in modules:
            require(module, purpose, extra)
    except MissingExtra:
        print_one_line()
        raise


def print_one_line() -> None:
    """Make an uncaught MlopsKitError print `kind: message` and exit with its code, without a
    traceback, for entry points that are not the CLI (`python -m mlops_cdk`; under `pulumi up`
    the program raises pulumi's RunError instead); other exceptions keep Python's traceback."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if not isinstance(exc, MlopsKitError):
            previous(kind, exc, tb)
            return
        print(f"{exc.kind}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)

    sys.excepthook = hook
