"""The Google Cloud components of the Pulumi program (docs/gcp.md)."""
