"""The Azure and Google Cloud components of mlops-kit's Pulumi program (`pulumi/__main__.py`)."""

from mlops_kit.extras import require_at_entry

require_at_entry("the Pulumi program (mlops_pulumi)", "azure", "pulumi")
