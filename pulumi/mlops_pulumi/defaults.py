"""Secure defaults, kept in one place: every component takes its settings from here."""

from __future__ import annotations

from typing import Any

TLS_AZURE = "TLS1_2"
STORAGE_ENCRYPTION: dict[str, Any] = {
    "key_source": "Microsoft.Storage",
    "require_infrastructure_encryption": True,
    "services": {"blob": {"enabled": True, "key_type": "Account"},
                 "file": {"enabled": True, "key_type": "Account"}},
}
STORAGE: dict[str, Any] = {
    "kind": "StorageV2",
    "minimum_tls_version": TLS_AZURE,
    "allow_blob_public_access": False,
    "allow_shared_key_access": False,
    "enable_https_traffic_only": True,
    "encryption": STORAGE_ENCRYPTION,
}
KEY_VAULT: dict[str, Any] = {
    "sku": {"family": "A", "name": "standard"},
    "enable_rbac_authorization": True,
    "enable_soft_delete": True,
    "enable_purge_protection": True,
    "soft_delete_retention_in_days": 90,
}
ACR_SKU = "Premium"          # the only SKU with private links and content trust
IDENTITY = {"type": "SystemAssigned"}

GCS_PUBLIC_ACCESS_PREVENTION = "enforced"
# Buckets: one access model (IAM only), never public, every overwrite kept as a version.
GCS_BUCKET: dict[str, Any] = {
    "uniform_bucket_level_access": True,
    "public_access_prevention": GCS_PUBLIC_ACCESS_PREVENTION,
    "versioning": {"enabled": True},
}
OAUTH_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
