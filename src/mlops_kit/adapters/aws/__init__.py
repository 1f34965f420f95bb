"""AWS adapters: S3 storage, the Glue Data Catalog and the SageMaker Model Registry (boto3)."""
