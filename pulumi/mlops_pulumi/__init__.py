"""The Azure and Google Cloud components of mlops-kit's Pulumi program (`pulumi/__main__.py`)."""
