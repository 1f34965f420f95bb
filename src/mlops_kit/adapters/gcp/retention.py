"""Retention of the BigQuery capture tables: the daily scheduled query that deletes a model's
logged requests older than `serving.capture.retention_days`.

Vertex AI creates `capture_<model>` itself (with the first logged request), so the table cannot
carry a partition expiration of ours; the script checks that the table exists and deletes by
`logging_time`. DML cannot change rows still in the streaming buffer (those written in about
the last 30 minutes), which never matters here: the delete only matches rows days old."""

from __future__ import annotations

import re

from mlops_kit.config.model import CAPTURE_RETENTION_MAX_DAYS
from mlops_kit.errors import MlopsKitError

# Google Cloud project ids (not the legacy domain-scoped ones), dataset and table names as
# the kit derives them (naming.dataset, naming.capture_table): nothing that needs escaping.
PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
DATASET_OR_TABLE = re.compile(r"[A-Za-z0-9_]{1,1024}")


class BigQueryNameError(MlopsKitError):
    """A name or value that cannot go into the retention query as it is."""

    kind = "config error"
    exit_code = 2


def _checked(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise BigQueryNameError(
            f"capture retention: {what} {value!r} is not a valid BigQuery name "
            f"(expected {pattern.pattern}); fix the environment's project or model name")
    return value


def capture_retention_sql(project: str, dataset: str, table: str, days: int) -> str:
    """A BigQuery script: delete the rows of `project.dataset.table` logged more than `days`
    days ago, and do nothing while the table does not exist yet."""
    _checked(PROJECT_ID, project, "project")
    _checked(DATASET_OR_TABLE, dataset, "dataset")
    _checked(DATASET_OR_TABLE, table, "table")
    top = CAPTURE_RETENTION_MAX_DAYS   # the config model's bound, not a copy of it
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= top:
        raise BigQueryNameError(
            f"serving.capture.retention_days {days!r}: expected a whole number of days "
            f"from 1 to {top}")
    return (f"IF EXISTS (SELECT 1 FROM `{project}.{dataset}`.INFORMATION_SCHEMA.TABLES "
            f"WHERE table_name = '{table}') THEN\n"
            f"  DELETE FROM `{project}.{dataset}.{table}`\n"
            f"  WHERE logging_time < TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {days} DAY);\n"
            "END IF;\n")
