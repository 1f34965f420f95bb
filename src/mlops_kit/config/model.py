"""The typed project config (`mlops.yaml`): every field, its default and its limits."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlops_kit.config import names
from mlops_kit.cron import check as check_cron
from mlops_kit.cron import weekly_minutes
from mlops_kit.errors import did_you_mean

NAME = r"^[a-z][a-z0-9_]{0,62}$"
Name = Annotated[str, Field(pattern=NAME)]
# Names that reach S3 buckets and SageMaker resources: lower case, digits, single hyphens.
CLOUD_NAME = r"^[a-z](-?[a-z0-9]){1,40}$"
CloudName = Annotated[str, Field(pattern=CLOUD_NAME)]
CRON = r"^\S+( \S+){4}$"


def _cron(value: str) -> str:
    check_cron(value)  # ValueError names the field out of range
    return value


Cron = Annotated[str, Field(pattern=CRON, description="5-field cron: min hour day month weekday"),
                 AfterValidator(_cron)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class Strict(BaseModel):
    """Base for every section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- data -----------------------------------------------------------------------------------


class GeneratorSource(Strict):
    """The built-in customer-churn generator (deterministic under its seed)."""

    kind: Literal["generator"] = "generator"
    rows: int = Field(20_000, ge=100, le=50_000_000)
    seed: int = 7
    shift: float = Field(0.0, ge=0.0, le=5.0, description="Distribution shift, 0 = none.")
    start: str = Field("2025-01-01", description="First event date (ISO).")
    dirty_fraction: float = Field(0.01, ge=0.0, le=1.0, description="Rows made invalid on purpose.")


class FileSource(Strict):
    """A CSV or Parquet file or folder; relative paths resolve against the config's folder."""

    kind: Literal["csv", "parquet"]
    path: str = Field(min_length=1)
    delimiter: str = Field(",", min_length=1, max_length=1)


Source = Annotated[GeneratorSource | FileSource, Field(discriminator="kind")]

ColumnType = Literal["int", "float", "string", "category", "bool", "timestamp"]


class Column(Strict):
    """One source column: its header in the data (`source`), the name the kit uses for it,
    its type, nullability and allowed values (docs/config.md#column-names)."""

    name: Annotated[str, Field(pattern=names.SAFE.pattern)]
    source: str | None = Field(
        None, min_length=1, max_length=1024,
        description="The header in the data, when it is not `name` (e.g. `a/b (mg)`).")
    type: ColumnType
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        """Only `source`, or an awkward `name`, given: the name is made by `safe_name`."""
        if not isinstance(data, dict):
            return data
        name, source = data.get("name"), data.get("source")
        if name is None and isinstance(source, str):
            return {**data, "name": names.safe_name(source)}
        if source is None and isinstance(name, str) and not names.is_safe(name):
            return {**data, "source": name, "name": names.safe_name(name)}
        return data

    @property
    def header(self) -> str:
        """The column's header in source files and requests."""
        return self.source if self.source is not None else self.name

    @model_validator(mode="after")
    def _limits_fit_type(self) -> Column:
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise ValueError(f"min/max apply to int and float columns, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        if self.type == "category" and not self.categories:
            raise ValueError("a category column needs a non-empty 'categories' list")
        if self.categories is not None and self.type != "category":
            raise ValueError(f"categories apply to category columns, not {self.type}")
        return self


class Schema(Strict):
    """Columns of the source and the roles some of them play."""

    table: Name = "events"
    columns: list[Column] = Field(min_length=2)
    target: str
    entity_id: str | None = None
    event_time: str | None = None
    allow_extra_columns: bool = False

    @model_validator(mode="after")
    def _roles_are_columns(self) -> Schema:
        names.check_columns([(c.header, c.name) for c in self.columns])
        known = [c.name for c in self.columns]
        for role in ("target", "entity_id", "event_time"):
            value = getattr(self, role)
            if value is not None and value not in known:
                raise ValueError(f"{role} {value!r} is not a column{self._use_name(value)}; "
                                 f"columns are {known}")
        if self.event_time and self.column(self.event_time).type != "timestamp":
            raise ValueError(f"event_time column {self.event_time!r} must have type timestamp")
        return self

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def aliases(self) -> dict[str, str]:
        """Header -> name of each column whose header is not its name."""
        return {c.source: c.name for c in self.columns if c.source not in (None, c.name)}

    def _use_name(self, header: str) -> str:
        """`: use its name X` when `header` is a column's header, else nothing."""
        name = self.aliases.get(header)
        return f" name but the header of column {name!r}: use {name!r}" if name else ""


class DataConfig(Strict):
    source: Source = Field(default_factory=GeneratorSource)
    schema_: Schema = Field(alias="schema")
    max_bad_fraction: float = Field(0.05, ge=0.0, le=1.0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- features -------------------------------------------------------------------------------

Transform = Literal[
    "identity", "log1p", "ratio", "difference", "product", "one_hot", "bucketize", "clip",
    "day_of_week", "month", "hour", "is_null",
]
ARITY = {"ratio": 2, "difference": 2, "product": 2}


class Feature(Strict):
    """One declared feature: a row-wise transform of source columns (no fitted state)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    transform: Transform = "identity"
    inputs: list[str] = Field(min_length=1)
    boundaries: list[float] | None = None
    lower: float | None = None
    upper: float | None = None

    @model_validator(mode="after")
    def _arity(self) -> Feature:
        want = ARITY.get(self.transform, 1)
        if len(self.inputs) != want:
            raise ValueError(f"transform {self.transform} takes {want} input(s), got {self.inputs}")
        if self.transform == "bucketize" and not self.boundaries:
            raise ValueError("bucketize needs 'boundaries'")
        if self.boundaries and self.boundaries != sorted(self.boundaries):
            raise ValueError("boundaries must be increasing")
        return self


class FeaturesConfig(Strict):
    group: Name = "features"
    declared: list[Feature] = Field(min_length=1)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    validation_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    split: Literal["time", "random"] = "time"


# --- model ----------------------------------------------------------------------------------


IntPair = tuple[int, int]


class IntRange(Strict):
    int: IntPair

    @field_validator("int")
    @classmethod
    def _ordered(cls, v: IntPair) -> IntPair:
        if v[0] > v[1]:
            raise ValueError(f"low {v[0]} must be <= high {v[1]}")
        return v


class FloatRange(Strict):
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one(self) -> FloatRange:
        ranges = [r for r in (self.uniform, self.loguniform) if r is not None]
        if len(ranges) != 1:
            raise ValueError("give exactly one of uniform or loguniform")
        lo, hi = ranges[0]
        if lo > hi:
            raise ValueError(f"low {lo} must be <= high {hi}")
        if self.loguniform is not None and lo <= 0:
            raise ValueError("loguniform bounds must be > 0")
        return self


class Choice(Strict):
    choice: list[Any] = Field(min_length=1)


Param = IntRange | FloatRange | Choice


class SearchConfig(Strict):
    trials: int = Field(8, ge=1, le=10_000)
    space: dict[str, Param] = Field(default_factory=dict)


HYPER_PARAMETERS = {
    "xgboost": frozenset({
        "n_estimators", "num_boost_round", "eta", "learning_rate", "gamma", "min_split_loss",
        "max_depth", "min_child_weight", "max_delta_step", "subsample", "sampling_method",
        "colsample_bytree", "colsample_bylevel", "colsample_bynode", "lambda", "reg_lambda",
        "alpha", "reg_alpha", "scale_pos_weight", "grow_policy", "max_leaves", "max_bin",
        "num_parallel_tree", "max_cat_to_onehot", "base_score", "eval_metric",
        "monotone_constraints", "interaction_constraints", "multi_strategy",
    }),
    "pytorch": frozenset({"hidden_sizes", "learning_rate", "epochs", "batch_size",
                          "weight_decay", "dropout"}),
}


class ModelConfig(Strict):
    name: CloudName = "model"
    task: Literal["binary", "multiclass", "regression"] = "binary"
    framework: Literal["xgboost", "pytorch", "sklearn"] = "xgboost"
    estimator: str | None = Field(
        None, validate_default=True,
        description="framework sklearn: the estimator's class or factory, "
                    "'package.module:Name'.")
    params: dict[str, Any] = Field(default_factory=dict)
    search: SearchConfig = Field(default_factory=SearchConfig)
    seed: int = 42
    threads: int = Field(2, ge=1, le=256)

    @field_validator("estimator")
    @classmethod
    def _estimator(cls, value: str | None, info: ValidationInfo) -> str | None:
        framework = info.data.get("framework")
        if framework != "sklearn":
            if value:
                raise ValueError(f"model.estimator is for framework sklearn; framework "
                                 f"{framework} has its own model (remove estimator)")
            return value
        if not value:
            raise ValueError("framework sklearn needs model.estimator: the estimator's class "
                             "or factory, e.g. 'sklearn.linear_model:LogisticRegression'")
        from mlops_kit.models.estimator import check_estimator

        check_estimator(value, info.data.get("task", "binary"), _root(info))
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        _check_names("params", list(value), info)
        return value

    @field_validator("search")
    @classmethod
    def _space(cls, value: SearchConfig, info: ValidationInfo) -> SearchConfig:
        _check_names("search.space", list(value.space), info)
        return value


def _root(info: ValidationInfo) -> Any:
    """The config's folder, when the loader gave it (the team's `src/` is found from it)."""
    return (info.context or {}).get("root")


def _check_names(where: str, names: list[str], info: ValidationInfo) -> None:
    """Hyper-parameter names against the framework's list, or the estimator's get_params()."""
    framework = info.data.get("framework")
    if framework == "sklearn":
        estimator = info.data.get("estimator")
        if estimator:  # else the estimator's own error is reported
            from mlops_kit.models.estimator import check_params

            check_params(estimator, names, _root(info))
        return
    if framework not in HYPER_PARAMETERS:
        return
    known = HYPER_PARAMETERS[framework]
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"unknown {framework} hyper-parameter(s) {unknown}"
                         f"{did_you_mean(unknown, known)}; "
                         f"known: {sorted(known)}")


METRICS = {
    "binary": ("roc_auc", "pr_auc", "accuracy", "f1", "logloss"),
    "multiclass": ("accuracy", "f1_macro", "logloss"),
    "regression": ("rmse", "mae", "r2"),
}
LOWER_IS_BETTER = {"logloss", "rmse", "mae"}


class QualityGate(Strict):
    metric: str = "roc_auc"
    min_value: float | None = None
    min_gain: float = 0.0


# --- serving, monitoring, registry, environments --------------------------------------------


class ScaleOutStep(Strict):
    """Add `change` instances while the metric (per instance per minute) is at least `lower`."""

    lower: float = Field(ge=0)
    change: int = Field(ge=1)


class ScaleInStep(Strict):
    """Remove `-change` instances while the metric (per instance per minute) is below `upper`."""

    upper: float = Field(gt=0)
    change: int = Field(le=-1)


class ScheduledFloor(Strict):
    """A recurring scheduled action: at `cron` (weekly, in `schedule_time_zone`) the scalable
    target's MinCapacity becomes `min_instances`; the policies scale above it."""

    cron: str = Field(description="5-field cron with day of month and month `*` (weekly).")
    min_instances: int = Field(ge=0, description="The new MinCapacity.")

    @field_validator("cron")
    @classmethod
    def _parses(cls, value: str) -> str:
        weekly_minutes(value)  # ValueError names the field that does not parse
        return value


SCHEDULED_ACTIONS_QUOTA = 200  # Application Auto Scaling: scheduled actions per target


class ScalingConfig(Strict):
    """How the endpoint's instance count follows traffic (see docs/config.md#serving).

    Step scaling (the default) is two alarms on the metric, one per direction, each driving a
    policy whose steps are absolute metric bands. `mlops-kit plan-scaling` computes the steps.
    """

    policy: Literal["step", "target_tracking"] = "step"
    metric: Literal["InvocationsPerInstance", "CPUUtilization"] = "InvocationsPerInstance"
    scale_out: list[ScaleOutStep] = Field(
        default_factory=lambda: [ScaleOutStep(lower=600, change=1),
                                 ScaleOutStep(lower=1200, change=2)], min_length=1)
    scale_in: list[ScaleInStep] = Field(
        default_factory=lambda: [ScaleInStep(upper=200, change=-1)], min_length=1)
    target_value: float = Field(700, gt=0, description="Target tracking's metric target.")
    cooldown_out_s: int = Field(60, ge=0, le=86_400)
    cooldown_in_s: int = Field(300, ge=0, le=86_400)
    evaluation_periods_out: int = Field(1, ge=1, le=60, description="1-minute periods.")
    evaluation_periods_in: int = Field(5, ge=1, le=60, description="1-minute periods.")
    datapoints_to_alarm_out: int | None = Field(
        None, ge=1, le=60, description="M of the scale-out alarm's M of N; N if unset.")
    datapoints_to_alarm_in: int | None = Field(
        None, ge=1, le=60, description="M of the scale-in alarm's M of N; N if unset.")
    scale_in_metric: Literal["current", "after_removal"] = Field(
        "current", description="after_removal: the scale-in alarm reads the metric the fleet "
        "would have with one instance fewer (CloudWatch metric math), so it never scales into "
        "the scale-out band. InvocationsPerInstance only.")
    scale_out_trend_minutes: float = Field(
        0, ge=0, le=30, description="k > 0: the scale-out alarm reads the rate projected k "
        "minutes ahead, metric math m * (1 + k * DIFF(inv) / inv) with m = "
        "InvocationsPerInstance and inv = Invocations (Sum, 1 min); 0: off. "
        "InvocationsPerInstance only.")
    scheduled: list[ScheduledFloor] = Field(
        default_factory=list, max_length=SCHEDULED_ACTIONS_QUOTA,
        description="Scheduled capacity floors (AAS scheduled actions setting MinCapacity).")
    schedule_time_zone: str = Field("UTC", description="IANA zone of the scheduled crons.")

    @field_validator("schedule_time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _schedule(self) -> ScalingConfig:
        seen: dict[int, str] = {}
        for floor in self.scheduled:
            for minute in weekly_minutes(floor.cron):
                if minute in seen:
                    raise ValueError(f"scheduled crons {seen[minute]!r} and {floor.cron!r} fire "
                                     "at the same minute; give each minute one floor")
                seen[minute] = floor.cron
        return self

    @model_validator(mode="after")
    def _bands(self) -> ScalingConfig:
        lowers = [s.lower for s in self.scale_out]
        uppers = [s.upper for s in self.scale_in]
        if lowers != sorted(set(lowers)):
            raise ValueError(f"scale_out lower bounds must strictly increase, got {lowers}")
        if uppers != sorted(set(uppers), reverse=True):
            raise ValueError(f"scale_in upper bounds must strictly decrease, got {uppers}")
        if uppers[0] > lowers[0]:
            raise ValueError(
                f"the scale-in band (below {uppers[0]}) overlaps the scale-out band (from "
                f"{lowers[0]}): set scale_in[0].upper <= scale_out[0].lower"
            )
        for way in ("out", "in"):
            m, n = getattr(self, f"datapoints_to_alarm_{way}"), getattr(
                self, f"evaluation_periods_{way}")
            if m is not None and m > n:
                raise ValueError(f"datapoints_to_alarm_{way} ({m}) must be <= "
                                 f"evaluation_periods_{way} ({n})")
        if self.scale_in_metric == "after_removal" and self.metric != "InvocationsPerInstance":
            raise ValueError("scale_in_metric after_removal needs metric InvocationsPerInstance")
        if self.scale_out_trend_minutes and self.metric != "InvocationsPerInstance":
            raise ValueError("scale_out_trend_minutes > 0 needs metric InvocationsPerInstance")
        return self


class CapacityConfig(Strict):
    """What `mlops-kit plan-scaling` needs besides `scaling`: one instance's capacity and the
    cloud's behaviour (see docs/scaling.md)."""

    instance_rps: float | None = Field(
        None, gt=0, description="Requests/s one instance serves within latency_p99_ms; "
        "`plan-scaling --measure` measures it.")
    vcpus: int | None = Field(
        None, ge=1, le=1024, description="vCPUs of instance_type; from its size if unset.")
    startup_s: int = Field(300, ge=0, le=3600, description="Scaling action to serving.")
    price_per_hour: float = Field(0.115, gt=0, description="Per instance-hour (ml.m5.large).")
    overload_budget_minutes: int = Field(0, ge=0, description="Allowed overloaded minutes.")
    target_safety_factor: float = Field(
        0.5, gt=0, le=1, description="Target tracking's target as a share of capacity.")


CAPTURE_RETENTION_MAX_DAYS = 3650   # serving.capture.retention_days' upper bound


class CaptureConfig(Strict):
    """Data capture: requests and responses logged with model version and time."""

    enabled: bool = True
    sampling_percent: float = Field(100.0, ge=0, le=100)
    inputs: bool = Field(True, description="false keeps request bodies out of the log.")
    retention_days: int = Field(
        30, ge=1, le=CAPTURE_RETENTION_MAX_DAYS, description="Captured records are deleted "
        "after this many days (local files, and the cloud capture storage's lifecycle rules).")
    max_mb: float = Field(
        1024, ge=1, le=1_048_576, description="Local capture only: beyond this size the "
        "oldest whole files are deleted.")


class DeploymentConfig(Strict):
    """Blue/green deployment with traffic shifting and auto-rollback (SageMaker guardrails)."""

    strategy: Literal["all_at_once", "canary", "linear"] = "canary"
    canary_percent: float = Field(10, gt=0, le=50)
    linear_step_percent: float = Field(25, ge=10, le=50)
    wait_s: float = Field(60, ge=0, le=3600, description="Bake time after each traffic shift.")
    termination_wait_s: float = Field(
        30, ge=0, le=3600, description="Old fleet kept (alarms watched) after the full shift.")
    max_error_rate: float = Field(0.01, ge=0, le=1, description="5xx share that rolls back.")
    alarm_on_4xx: bool = Field(
        False, description="Count 4xx (requests the new version refuses) as errors too.")
    min_invocations: int = Field(10, ge=1, description="Fewer in a period: insufficient data.")
    alarm_period_s: float = Field(10, gt=0, le=600)
    shadow_percent: float = Field(20, gt=0, le=100, description="Traffic mirrored in shadow.")
    lease_s: float = Field(
        30, ge=1, le=3600,
        description="The deployer's lease: a deployment not renewed for this long is finished "
                    "or rolled back by the server.")
    ack_timeout_s: float = Field(
        30, gt=0, le=600,
        description="How long deploy, rollback and shadow wait for every server worker to "
                    "serve the change.")


class LimitsConfig(Strict):
    """What one request may send, and how slowly (hostile or broken clients)."""

    max_header_kb: float = Field(16, gt=0, le=1024,
                                 description="Request line and headers, in all; else 431.")
    max_headers: int = Field(100, ge=1, le=10_000, description="Header count; else 431.")
    max_line_kb: float = Field(8, gt=0, le=1024, description="The request line; else 414.")
    header_timeout_s: float = Field(
        10, gt=0, le=3600, description="From a request's first byte to its last header; else 408.")
    body_timeout_s: float = Field(
        30, gt=0, le=3600, description="From the last header to the body's end; else 408.")
    keep_alive_s: float = Field(
        75, gt=0, le=3600, description="An idle connection (a new one too) closes after this.")
    max_connections: int = Field(
        512, ge=1, le=1_000_000,
        description="Connections per worker; over it the oldest idle one closes, else 503.")


class ServingConfig(Strict):
    instance_type: str = "ml.m5.large"
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig)
    port: int = Field(8080, ge=1, le=65535)
    workers: int | None = Field(None, ge=1, le=64, description="Processes; CPU count if unset.")
    max_payload_mb: float = Field(6.0, gt=0, le=100)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    min_instances: int = Field(1, ge=0)
    max_instances: int = Field(4, ge=1)
    latency_p99_ms: float = Field(100, gt=0)
    image: str | None = Field(None, description="Inference image URI; the cloud default if unset.")
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    capacity: CapacityConfig = Field(default_factory=CapacityConfig)

    @model_validator(mode="after")
    def _bounds(self) -> ServingConfig:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) must be <= max_instances "
                f"({self.max_instances})"
            )
        for floor in self.scaling.scheduled:
            if not self.min_instances <= floor.min_instances <= self.max_instances:
                raise ValueError(
                    f"scaling.scheduled {floor.cron!r}: min_instances {floor.min_instances} must "
                    f"be within min_instances ({self.min_instances}) and max_instances "
                    f"({self.max_instances})")
        return self


class MonitoringConfig(Strict):
    """Drift thresholds (see docs/monitoring.md) and where drift metrics go."""

    psi_threshold: float = Field(0.2, gt=0)
    noise_pvalue: float = Field(
        0.01, gt=0, lt=1, description="Chance that sampling alone flags a PSI or a rise of "
        "missing values (their noise allowance).")
    min_rows: int = Field(
        50, ge=1, description="Fewer values in a column: its distribution is insufficient "
        "data, neither drift nor ok (10 PSI buckets x 5 values each).")
    ks_pvalue: float = Field(0.01, gt=0, lt=1)
    ks_min_statistic: float = Field(
        0.05, ge=0, le=1, description="KS drift also needs this distance, so huge batches "
        "do not flag negligible shifts.")
    missing_increase: float = Field(0.05, ge=0, le=1)
    max_violation_fraction: float = Field(
        0.0, ge=0, le=1, description="Share of rows a constraint may break (0: none).")
    quality_drop: float = Field(0.05, ge=0)
    metrics_sink: Literal["local", "cloudwatch", "cloud_monitoring", "app_insights"] = "local"
    schedule: Cron = Field("0 * * * *", description="Monitoring of captured traffic (cron).")
    alert_emails: list[Email] = Field(default_factory=list, description="Alarm subscribers.")


class LoopConfig(Strict):
    """The local closed loop that `mlops-kit run` drives after training (see docs/local.md)."""

    enabled: bool = True
    replay_rows: int = Field(2000, ge=100, le=1_000_000, description="Rows sent per phase.")
    request_rows: int = Field(10, ge=1, le=10_000, description="Rows per request.")
    concurrency: int = Field(4, ge=1, le=256)
    drift_shift: float = Field(1.0, gt=0, le=5, description="Strength of the injected drift.")
    bake_s: float = Field(3.0, ge=0.5, le=600, description="Canary bake time in the loop.")
    seed: int = 11


class LakeConfig(Strict):
    """Retention and query limits of the cloud data lake (zones: raw, curated, quarantine)."""

    raw_infrequent_access_days: int = Field(30, ge=30, description="Raw objects to S3 IA.")
    raw_archive_days: int = Field(180, ge=60, description="Raw objects to Glacier IR.")
    quarantine_expire_days: int = Field(90, ge=1, description="Quarantined rows kept this long.")
    noncurrent_expire_days: int = Field(30, ge=1, description="Old object versions kept.")
    logs_expire_days: int = Field(365, ge=1, description="Access logs kept.")
    athena_scan_limit_gb: float = Field(
        10, ge=0.01, le=10_000, description="Athena refuses queries scanning more.")


class TrainingConfig(Strict):
    """The cloud training pipeline's compute and schedule."""

    instance_type: str = Field("ml.m5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    processing_instance_type: str = Field("ml.m5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    volume_gb: int = Field(30, ge=1, le=16_384)
    max_runtime_s: int = Field(4 * 3600, ge=60, le=28 * 86_400)
    schedule: Cron | None = Field(
        "0 3 * * 1", description="When to retrain (5-field cron); null: drift and pushes only.")
    time_zone: str = Field("UTC", min_length=1, description="IANA zone of the schedule.")
    retrain_on_drift: bool = True


class CicdConfig(Strict):
    """The delivery pipeline: a git push trains; an approved model goes staging, then prod."""

    repository: str | None = Field(
        None, pattern=r"^[\w.-]+/[\w.-]+$", description="owner/name; no delivery if unset.")
    branch: str = Field("main", min_length=1)
    source: Literal["codestar", "codecommit"] = "codestar"
    connection_arn: str | None = Field(
        None, pattern=r"^arn:aws[\w-]*:(codestar-connections|codeconnections):",
        description="CodeStar connection to GitHub, GitLab or Bitbucket.")
    environment: Name | None = Field(
        None, description="The environment whose account runs the pipeline (first AWS one).")
    stages: list[Name] = Field(
        default_factory=list, description="Deploy order after approval (other AWS envs).")
    notify_emails: list[Email] = Field(default_factory=list, description="Approvers.")


# local files, or the registry of the selected environment's cloud (AWS, Azure, Google Cloud).
RegistryBackend = Literal["local", "sagemaker", "azureml", "vertex"]


class RegistryConfig(Strict):
    backend: RegistryBackend = "local"
    approval: Literal["auto", "manual"] = "auto"


class TrackingConfig(Strict):
    uri: str | None = Field(None, description="MLflow tracking URI; local SQLite if unset.")
    experiment: str | None = None


Version = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class ImageConfig(Strict):
    """The project image that runs the step jobs, the server and the monitoring job on every
    cloud (built from `dockerfile` with the project folder as context; on AWS the CDK builds
    and pushes it as an asset)."""

    repository: CloudName = Field("mlops-kit", description="Azure/GCP registry repository.")
    tag: str = Field("latest", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    config_path: str = Field(
        "/opt/mlops/mlops.yaml", pattern=r"^/", description="Where the image holds this file.")
    dockerfile: str = Field(
        "Dockerfile", min_length=1, description="The image's Dockerfile, relative to the config.")


class AzureConfig(Strict):
    """Azure-only settings of the Pulumi program (docs/azure.md)."""

    instance_type: str | None = Field(
        None, description="Online deployment SKU; mapped from serving.instance_type if unset.")
    training_vm_size: str = "Standard_DS3_v2"
    training_max_nodes: int = Field(2, ge=1, le=1000)
    idle_before_scale_down_s: int = Field(300, ge=60, le=86_400)
    storage_sku: Literal["Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_RAGZRS"] = (
        "Standard_ZRS")
    log_retention_days: int = Field(30, ge=30, le=730)
    endpoint_public_access: bool = Field(
        True, description="false: scoring only through a private endpoint.")
    deploy_versions: dict[CloudName, Version] = Field(
        default_factory=dict, description="model name -> registry version the deployment serves.")


class GcpConfig(Strict):
    """Google-Cloud-only settings of the Pulumi program (docs/gcp.md)."""

    machine_type: str | None = Field(
        None, description="Vertex serving machine; mapped from serving.instance_type if unset.")
    training_machine_type: str = "n1-standard-4"
    kms_key: str | None = Field(
        None, pattern=r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$",
        description="Cloud KMS key for buckets and BigQuery (CMEK); Google-managed if unset.")
    cpu_target_percent: int = Field(
        60, ge=1, le=100, description="Vertex's utilization target when the metric is requests.")
    feature_sync_schedule: Cron = "0 * * * *"
    monitoring_machine_type: str = Field(
        "n1-standard-4", min_length=1, description="Machine of the drift monitoring job.")
    online_store_min_nodes: int = Field(1, ge=1, le=100)
    online_store_max_nodes: int = Field(2, ge=1, le=100)
    online_store_cpu_target: int = Field(50, ge=10, le=80)

    @model_validator(mode="after")
    def _nodes(self) -> GcpConfig:
        if self.online_store_min_nodes > self.online_store_max_nodes:
            raise ValueError("online_store_min_nodes must be <= online_store_max_nodes")
        return self


class Environment(Strict):
    cloud: Literal["aws", "azure", "gcp"]
    account: str | None = None
    subscription: str | None = None
    project: str | None = None
    region: str
    overrides: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _identity(self) -> Environment:
        need = {"aws": "account", "azure": "subscription", "gcp": "project"}[self.cloud]
        if not getattr(self, need):
            raise ValueError(f"a {self.cloud} environment needs '{need}'")
        if self.cloud == "aws" and not re.fullmatch(r"\d{12}", self.account or ""):
            raise ValueError(f"account must be 12 digits, got {self.account!r}")
        return self


class ProjectConfig(Strict):
    """The whole project: one file drives local runs and every cloud."""

    project: CloudName
    pipeline: str | None = Field(
        None, description="The pipeline DAG file; the kit's own (package data) if unset.")
    data: DataConfig
    features: FeaturesConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    models: list[ModelConfig] = Field(
        default_factory=list, description="Several models on the same data; `model` is the first.")
    quality_gate: QualityGate = Field(default_factory=QualityGate)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    lake: LakeConfig = Field(default_factory=LakeConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    cicd: CicdConfig = Field(default_factory=CicdConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    image: ImageConfig = Field(default_factory=ImageConfig)
    azure: AzureConfig = Field(default_factory=AzureConfig)
    gcp: GcpConfig = Field(default_factory=GcpConfig)
    environments: dict[Name, Environment] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _primary_model(cls, data: Any) -> Any:
        """With a `models` list, `model` is its first entry unless it names one of the list."""
        if isinstance(data, dict) and data.get("models"):
            if data.get("model") is None:
                return {**data, "model": data["models"][0]}
            if data["model"] not in data["models"]:
                raise ValueError("give either 'model' (one model) or 'models' (a list), not both")
        return data

    @model_validator(mode="after")
    def _cross_checks(self) -> ProjectConfig:
        model_names = [m.name for m in self.all_models]
        dupes = sorted({n for n in model_names if model_names.count(n) > 1})
        if dupes:
            raise ValueError(f"models: duplicate model names {dupes}; each needs its own name")
        schema = self.data.schema_
        names = {c.name for c in schema.columns}
        for i, feat in enumerate(self.features.declared):
            for col in feat.inputs:
                if col not in names:
                    raise ValueError(
                        f"features.declared[{i}] ({feat.name}): input {col!r} is not a schema "
                        f"column{schema._use_name(col)}; columns are {sorted(names)}"
                    )
                if col == schema.target:
                    raise ValueError(
                        f"features.declared[{i}] ({feat.name}) reads the target {col!r}: "
                        "that leaks the label into the model"
                    )
        self._check_cicd()
        unknown = sorted(set(self.azure.deploy_versions) - {m.name for m in self.all_models})
        if unknown:
            raise ValueError(f"azure.deploy_versions: no model(s) {unknown}; "
                             f"models are {[m.name for m in self.all_models]}")
        target = schema.column(schema.target)
        for model in self.all_models:
            allowed = METRICS[model.task]
            if self.quality_gate.metric not in allowed:
                raise ValueError(
                    f"quality_gate.metric {self.quality_gate.metric!r} does not fit task "
                    f"{model.task} of model {model.name!r}; allowed: {', '.join(allowed)}"
                )
            if model.task == "regression" and target.type not in ("int", "float"):
                raise ValueError(f"a regression target must be int or float, not {target.type}")
        return self

    def _check_cicd(self) -> None:
        aws = [n for n, e in self.environments.items() if e.cloud == "aws"]
        for name in [self.cicd.environment, *self.cicd.stages]:
            if name is not None and name not in aws:
                raise ValueError(f"cicd: {name!r} is not an AWS environment; AWS ones: {aws}")
        home = self.cicd.environment or (aws[0] if aws else None)
        seen: set[str] = set()
        for name in self.cicd.stages:
            if name == home:
                raise ValueError(f"cicd.stages: {name!r} is the environment the pipelines run "
                                 "in (the delivery pipeline deploys it on push); list only the "
                                 "environments a release goes to after it")
            if name in seen:
                raise ValueError(f"cicd.stages: {name!r} is listed twice; give each once")
            seen.add(name)

    @property
    def all_models(self) -> list[ModelConfig]:
        """Every model of the project: the `models` list, or the single `model`."""
        return list(self.models) or [self.model]

    def for_model(self, name: str) -> ProjectConfig:
        """This config with `model` set to the model called `name` (ValueError if none is)."""
        for model in self.all_models:
            if model.name == name:
                return self.model_copy(update={"model": model})
        raise ValueError(f"no model {name!r}; models are {[m.name for m in self.all_models]}")

    @property
    def table(self) -> Schema:
        """The data schema (columns and their roles)."""
        return self.data.schema_
