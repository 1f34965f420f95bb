"""The shared pipeline steps. Each is a plain function plus a job entry point
(`python -m mlops_kit.steps.<name>`) that runs unchanged locally and in cloud jobs.
No module here imports a cloud SDK (checked by import-linter)."""

NAMES = ("ingest", "validate", "features", "train", "evaluate", "register")
