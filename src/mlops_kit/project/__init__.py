"""Starting a project: what `init --from` infers from a data file (`infer.infer_project`)."""
