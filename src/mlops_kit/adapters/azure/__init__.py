"""Azure: resource names and the Azure ML pipeline job rendered from the cloud-neutral DAG."""
