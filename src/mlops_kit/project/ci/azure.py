"""The GitHub Actions login to Azure that this package's workflow and the Azure platform's
(mlops_pulumi.azure.cicd) share; apart from the AWS rules, which the Pulumi program never
imports."""

from __future__ import annotations

from typing import Any


def azure_login(subscription: str) -> dict[str, Any]:
    """OIDC login to `subscription` with the app registration's ids (repository secrets)."""
    return {"uses": "azure/login@v2", "with": {
        "client-id": "${{ secrets.AZURE_CLIENT_ID }}",
        "tenant-id": "${{ secrets.AZURE_TENANT_ID }}",
        "subscription-id": subscription}}
