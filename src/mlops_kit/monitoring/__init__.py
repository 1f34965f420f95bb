"""Data drift monitoring: baselines in SageMaker Model Monitor's layout, drift, quality, metrics.

Only numpy and pandas are imported here, so the features step can write a baseline without
pulling in plotting, the registry or a cloud SDK.
"""

from mlops_kit.monitoring.baseline import (
    Baseline,
    BaselineError,
    compute_baseline,
    read_baseline,
    write_baseline,
)
from mlops_kit.monitoring.drift import (
    DriftInputError,
    DriftReport,
    FeatureDrift,
    QualityResult,
    compute_drift,
    compute_quality,
)

__all__ = ["Baseline", "BaselineError", "DriftInputError", "DriftReport", "FeatureDrift",
           "QualityResult", "compute_baseline", "compute_drift", "compute_quality",
           "read_baseline", "write_baseline"]
