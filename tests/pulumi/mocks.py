"""Pulumi mocks that record every resource: no CLI, no cloud, no network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi


@dataclass(frozen=True)
class Created:
    type: str
    name: str
    inputs: dict[str, Any]


class RecordingMocks(pulumi.runtime.Mocks):
    """Each resource's state is its inputs plus the ids and names other resources read."""

    def __init__(self) -> None:
        self.created: list[Created] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        self.created.append(Created(args.typ, args.name, inputs))
        rid = f"/mock/{args.typ.split(':')[-1]}/{args.name}"
        name = next((v for k, v in inputs.items()
                     if k.endswith("Name") and isinstance(v, str) and k != "resourceGroupName"
                     and k != "workspaceName" and k != "accountName"), args.name)
        state = {"name": inputs.get("name", name), "loginServer": f"{args.name}.example",
                 "id": rid, "selfLink": rid, **inputs, **_computed(args.typ, inputs)}
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "azure-native:authorization:getClientConfig":
            return {"tenantId": "00000000-0000-0000-0000-0000000000aa", "clientId": "c",
                    "objectId": "o", "subscriptionId": "s"}
        if args.token == "gcp:organizations/getProject:getProject":
            return {"projectId": args.args.get("projectId"), "number": "123456789012"}
        return {}

    def of_type(self, suffix: str) -> list[Created]:
        """Resources whose type token ends with `suffix` (e.g. 'storage:StorageAccount')."""
        return [c for c in self.created if c.type.endswith(suffix)]

    def reset(self) -> None:
        self.created.clear()


def _computed(typ: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Outputs the provider computes that other resources read (else they never resolve)."""
    if typ == "gcp:serviceaccount/account:Account":
        email = f"{inputs['accountId']}@{inputs['project']}.iam.gserviceaccount.com"
        return {"email": email, "name": f"projects/{inputs['project']}/serviceAccounts/{email}"}
    if typ == "gcp:projects/iAMCustomRole:IAMCustomRole":
        return {"name": f"projects/{inputs['project']}/roles/{inputs['roleId']}"}
    if typ == "gcp:artifactregistry/repository:Repository":
        return {"name": inputs["repositoryId"]}
    if typ == "azure-native:managedidentity:UserAssignedIdentity":
        return {"principalId": "00000000-0000-0000-0000-00000000a001",
                "clientId": "00000000-0000-0000-0000-00000000c001"}
    if typ == "azure-native:machinelearningservices:OnlineEndpoint":
        return {"identity": {**inputs.get("identity", {}),
                             "principalId": f"principal-{inputs['endpointName']}"}}
    if typ == "azure-native:machinelearningservices:Compute" and "identity" in inputs:
        ids = inputs["identity"].get("userAssignedIdentities", [])  # the output is a map
        return {"identity": {**inputs["identity"], "userAssignedIdentities": {i: {} for i in ids}}}
    if typ == "azure-native:machinelearningservices:Workspace":
        return {"workspaceId": "00000000-0000-0000-0000-00000000b001"}
    if typ == "azure-native:applicationinsights:Component":
        return {"connectionString": "InstrumentationKey=ikey-1;IngestionEndpoint="
                                    "https://westeurope-5.in.applicationinsights.azure.com/"}
    return {}


MOCKS = RecordingMocks()
pulumi.runtime.set_mocks(MOCKS, project="mlops-platform", stack="test", preview=False)
