"""Artifact Registry for the project image and the Vertex AI metadata store of the pipelines."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_gcp import artifactregistry, vertex

import pulumi


@dataclass(frozen=True)
class FoundationArgs:
    region: str
    repository: str             # image.repository
    kms_key: str | None
    labels: dict[str, str]


class Foundation(pulumi.ComponentResource):
    """The Docker repository (scanned, optional CMEK) and the `default` metadata store."""

    def __init__(self, name: str, args: FoundationArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:Foundation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = artifactregistry.Repository(
            f"{name}-images", repository_id=args.repository, location=args.region,
            format="DOCKER", labels=args.labels, kms_key_name=args.kms_key,
            description="The project image: steps, server and monitoring on Vertex AI",
            vulnerability_scanning_config={"enablement_config": "INHERITED"}, opts=child)
        encryption = {"encryption_spec": {"kms_key_name": args.kms_key}} if args.kms_key else {}
        # Vertex AI Pipelines record runs, artifacts and lineage in the region's `default` store.
        self.metadata_store = vertex.AiMetadataStore(
            f"{name}-metadata", name="default", region=args.region,
            description="Lineage of the training pipelines", opts=child, **encryption)
        self.register_outputs({"repository": self.repository.name,
                               "metadata_store": self.metadata_store.name})
