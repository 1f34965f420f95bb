"""The capture tables' retention query: names quoted, bad names and days refused."""

from __future__ import annotations

import pytest

from mlops_kit.adapters.gcp.retention import BigQueryNameError, capture_retention_sql
from mlops_kit.config.model import CAPTURE_RETENTION_MAX_DAYS, CaptureConfig
from mlops_kit.errors import MlopsKitError


def test_the_script_checks_the_table_then_deletes_rows_older_than_the_days() -> None:
    sql = capture_retention_sql("churn-prod-333333", "churn_gcp_prod", "capture_churn_mlp", 30)
    assert sql == (
        "IF EXISTS (SELECT 1 FROM `churn-prod-333333.churn_gcp_prod`.INFORMATION_SCHEMA.TABLES "
        "WHERE table_name = 'capture_churn_mlp') THEN\n"
        "  DELETE FROM `churn-prod-333333.churn_gcp_prod.capture_churn_mlp`\n"
        "  WHERE logging_time < TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 30 DAY);\n"
        "END IF;\n")


@pytest.mark.parametrize(("project", "dataset", "table"), [
    ("churn`; DROP TABLE x; --", "ds", "capture_m"),   # a backtick would end the quoting
    ("Churn-Prod", "ds", "capture_m"),                 # project ids are lower case
    ("abc", "ds", "capture_m"),                        # 6 to 30 characters
    ("churn-prod-", "ds", "capture_m"),
    ("churn-prod", "my-dataset", "capture_m"),         # '-' is not allowed in a dataset
    ("churn-prod", "ds", "capture_m' OR '1'='1"),      # a quote would end the string
    ("churn-prod", "ds", ""),
    ("churn-prod", "ds.other", "capture_m"),
])
def test_names_that_are_not_bigquery_identifiers_are_refused(project: str, dataset: str,
                                                              table: str) -> None:
    with pytest.raises(BigQueryNameError, match="is not a valid BigQuery name"):
        capture_retention_sql(project, dataset, table, 30)


@pytest.mark.parametrize("days", [0, -1, 3651, True, 1.5])
def test_days_outside_the_config_bounds_are_refused(days: object) -> None:
    with pytest.raises(MlopsKitError, match=r"retention_days .*from 1 to 3650"):
        capture_retention_sql("churn-prod", "ds", "capture_m", days)  # type: ignore[arg-type]


def test_the_days_bound_is_the_config_models() -> None:
    bound = CaptureConfig.model_fields["retention_days"].metadata
    assert any(getattr(m, "le", None) == CAPTURE_RETENTION_MAX_DAYS for m in bound)
    assert "INTERVAL 3650 DAY" in capture_retention_sql(
        "churn-prod", "ds", "capture_m", CAPTURE_RETENTION_MAX_DAYS)
