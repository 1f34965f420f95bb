"""The release step on Vertex AI: deploy each model's approved version to its endpoint.

    python -m mlops_kit.adapters.gcp.release deploy --env gcp_prod [--require]

Pulumi owns the endpoints and the deployment resource pools; no Pulumi resource deploys a model.
`deploy` takes, for every model of the config, the version holding the registry's `production`
alias (the newest approved one), deploys it to the model's endpoint in the model's resource pool
with 100% of the traffic (`DeployModel`), then undeploys what served before. Nothing changes when
that version already serves alone. Models without an approved version are skipped (an error
with `--require`). Cloud Build runs it after pushing the image (docs/gcp.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud.aiplatform_v1 import types

from mlops_kit.adapters.gcp import naming
from mlops_kit.adapters.gcp.registry import VertexRegistry
from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.registry import RegistryError, open_registry, production

TIMEOUT_S = 3600


class ReleaseError(Exception):
    """A release cannot go on; the message says what is missing or wrong."""


def endpoint_name(loaded: LoadedConfig, model: str) -> str:
    """The model's endpoint resource (the id Pulumi gave it)."""
    env = str(loaded.env)
    return (f"{naming.location(loaded)}/endpoints/"
            f"{naming.endpoint_id(loaded.config.project, env, model)}")


def pool_name(loaded: LoadedConfig, model: str) -> str:
    """The model's deployment resource pool (replicas and autoscaling from the config)."""
    pool = naming.resource_pool(loaded.config.project, str(loaded.env), model)
    return f"{naming.location(loaded)}/deploymentResourcePools/{pool}"


def _serves(deployed: Any, resource: str, version: int) -> bool:
    """Whether a DeployedModel is `resource` at `version`."""
    name, _, tail = deployed.model.partition("@")
    return name == resource and (deployed.model_version_id or tail) == str(version)


def deploy(endpoints: Any, registry: VertexRegistry, loaded: LoadedConfig,
           model: str) -> dict[str, Any]:
    """Deploy the production version of `model`; a summary of what was done."""
    current = production(registry, model)
    if current is None:
        return {"model": model, "version": None, "changed": False}
    endpoint = endpoint_name(loaded, model)
    resource = registry.resource(model)
    found = endpoints.get_endpoint(request=types.GetEndpointRequest(name=endpoint))
    serving = [d for d in found.deployed_models if _serves(d, resource, current.version)]
    if serving and len(found.deployed_models) == 1:
        return {"model": model, "version": current.version, "changed": False,
                "deployed_model_id": serving[0].id}
    if serving:
        keep = serving[0].id
    else:
        request = types.DeployModelRequest(
            endpoint=endpoint, traffic_split={"0": 100},
            deployed_model=types.DeployedModel(
                model=f"{resource}@{current.version}", shared_resources=pool_name(loaded, model),
                display_name=f"{model}-v{current.version}"))
        keep = endpoints.deploy_model(request=request).result(timeout=TIMEOUT_S).deployed_model.id
    old = [d.id for d in found.deployed_models if d.id != keep]
    for deployed_id in old:
        endpoints.undeploy_model(request=types.UndeployModelRequest(
            endpoint=endpoint, deployed_model_id=deployed_id,
            traffic_split={keep: 100})).result(timeout=TIMEOUT_S)
    return {"model": model, "version": current.version, "changed": True,
            "deployed_model_id": keep, "undeployed": old}


def deploy_all(endpoints: Any, registry: VertexRegistry, loaded: LoadedConfig, *,
               require: bool) -> list[dict[str, Any]]:
    """`deploy` for every model; ReleaseError with `require` if one has no approved version."""
    done = [deploy(endpoints, registry, loaded, m.name) for m in loaded.config.all_models]
    missing = [d["model"] for d in done if d["version"] is None]
    if missing and require:
        raise ReleaseError(f"no approved version of {', '.join(missing)}: approve one first "
                           f"(mlops-kit registry approve N --env {loaded.env} "
                           "--set registry.backend=vertex)")
    return done


def endpoint_client(loaded: LoadedConfig) -> Any:
    """An EndpointServiceClient on the environment's regional Vertex AI endpoint."""
    from google.cloud.aiplatform_v1.services.endpoint_service import EndpointServiceClient

    return EndpointServiceClient(client_options={
        "api_endpoint": f"{naming.region(loaded)}-aiplatform.googleapis.com"})


def main(argv: list[str] | None = None, endpoints: Any = None, **registry_options: Any) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_kit.adapters.gcp.release")
    parser.add_argument("command", choices=["deploy"])
    parser.add_argument("--config", default="mlops.yaml")
    parser.add_argument("--env", required=True)
    parser.add_argument("--require", action="store_true",
                        help="fail unless every model has an approved version")
    args = parser.parse_args(argv)
    try:
        loaded = load_config(args.config, env=args.env, sets=["registry.backend=vertex"])
        registry = open_registry(loaded, **registry_options)
        assert isinstance(registry, VertexRegistry)
        result = deploy_all(endpoints or endpoint_client(loaded), registry, loaded,
                            require=args.require)
    except (ConfigError, ReleaseError, RegistryError, GoogleAPIError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
