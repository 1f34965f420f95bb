"""The local runtime: runs the pipeline on this machine against local or moto-backed adapters."""
