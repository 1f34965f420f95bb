"""A synthesized cloud assembly read back as CloudFormation would resolve it at deploy time.

`Assembly` loads every template of one stage and resolves the intrinsic functions our stacks
use (`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::ImportValue`, `Fn::Select`, `Fn::Split`)
to the values a deployment in `account`/`region` would give them: a bucket's `Ref` is its
`BucketName`, a resource with a name property its name, an `Arn` attribute the resource's ARN.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The property holding a resource's physical name, per type (its `Ref` where the type says so).
NAME_PROPERTY = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
    "AWS::SageMaker::Pipeline": "PipelineName",
    "AWS::IAM::Role": "RoleName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Glue::Database": "DatabaseInput.Name",
}
ARN_SERVICE = {"AWS::KMS::Key": ("kms", "key/"), "AWS::IAM::Role": ("iam", "role/"),
               "AWS::S3::Bucket": ("s3", ""), "AWS::SNS::Topic": ("sns", "")}


@dataclass
class Assembly:
    """The templates of one stage's assembly folder, resolvable as deployed."""

    folder: Path
    account: str
    region: str
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path, account: str, region: str) -> Assembly:
        manifest = json.loads((folder / "manifest.json").read_text())
        out = cls(folder, account, region)
        for artifact in manifest["artifacts"].values():
            if artifact["type"] == "aws:cloudformation:stack":
                name = artifact["properties"].get("stackName") or artifact["displayName"]
                template = artifact["properties"]["templateFile"]
                out.templates[name] = json.loads((folder / template).read_text())
        return out

    def resources(self, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(stack, logical id, resolved properties) of every resource of type `kind`."""
        return [(stack, logical, self.resolve(res.get("Properties", {}), stack))
                for stack, t in self.templates.items()
                for logical, res in t.get("Resources", {}).items() if res["Type"] == kind]

    def resolve(self, value: Any, stack: str) -> Any:
        if isinstance(value, list):
            return [self.resolve(v, stack) for v in value]
        if not isinstance(value, dict):
            return value
        key = next(iter(value), "")
        if len(value) == 1 and (key == "Ref" or key.startswith("Fn::")):
            handlers = {"Ref": self._ref, "Fn::GetAtt": self._get_att, "Fn::Join": self._join,
                        "Fn::Sub": self._sub, "Fn::ImportValue": self._import_value,
                        "Fn::Select": self._select, "Fn::Split": self._split}
            if key not in handlers:
                raise NotImplementedError(f"intrinsic {key} in {stack}")
            return handlers[key](value[key], stack)
        return {k: self.resolve(v, stack) for k, v in value.items()}

    def _ref(self, name: str, stack: str) -> str:
        pseudo = {"AWS::AccountId": self.account, "AWS::Region": self.region,
                  "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
                  "AWS::StackName": stack, "AWS::NoValue": None}
        if name in pseudo:
            return str(pseudo[name])
        resource = self.templates[stack]["Resources"].get(name)
        if resource is None:
            return str(self.templates[stack].get("Parameters", {}).get(name, {}).get("Default"))
        return self._name(resource, name, stack)

    def _name(self, resource: dict[str, Any], logical: str, stack: str) -> str:
        path = NAME_PROPERTY.get(resource["Type"])
        node: Any = resource.get("Properties", {})
        for part in (path or "").split("."):
            node = node.get(part) if isinstance(node, dict) and part else None
        return str(self.resolve(node, stack)) if node is not None else f"{stack}-{logical}"

    def _get_att(self, arg: Any, stack: str) -> str:
        logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
        resource = self.templates[stack]["Resources"][logical]
        name = self._name(resource, logical, stack)
        if attribute != "Arn":
            return f"{name}.{attribute}"
        service, kind = ARN_SERVICE.get(resource["Type"], (resource["Type"].split("::")[1]
                                                           .lower(), ""))
        if service == "s3":
            return f"arn:aws:s3:::{name}"
        scope = "" if service == "iam" else self.region
        return f"arn:aws:{service}:{scope}:{self.account}:{kind}{name}"

    def _join(self, arg: list[Any], stack: str) -> str:
        sep, parts = arg
        return str(sep).join(str(self.resolve(p, stack)) for p in parts)

    def _sub(self, arg: Any, stack: str) -> str:
        text, names = (arg, {}) if isinstance(arg, str) else arg

        def sub(match: re.Match[str]) -> str:
            ref = match.group(1)
            if ref in names:
                return str(self.resolve(names[ref], stack))
            if "." in ref and not ref.startswith("AWS::"):
                return self._get_att(ref, stack)
            return self._ref(ref, stack)

        return re.sub(r"\$\{([^}]+)\}", sub, str(text))

    def _import_value(self, name: Any, stack: str) -> Any:
        name = self.resolve(name, stack)
        for other, template in self.templates.items():
            for output in template.get("Outputs", {}).values():
                if self.resolve(output.get("Export", {}).get("Name"), other) == name:
                    return self.resolve(output["Value"], other)
        raise KeyError(f"no stack of {self.folder} exports {name!r}")

    def _select(self, arg: list[Any], stack: str) -> Any:
        return self.resolve(arg[1], stack)[int(arg[0])]

    def _split(self, arg: list[Any], stack: str) -> list[str]:
        return str(self.resolve(arg[1], stack)).split(arg[0])
