"""Google Cloud: resource names and the Vertex AI (KFP v2) pipeline spec rendered from the DAG."""
