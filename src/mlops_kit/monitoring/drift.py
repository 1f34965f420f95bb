"""Drift of source rows against a baseline: PSI, Kolmogorov-Smirnov, missing values, constraints.

Numbers: PSI over the baseline's 10 equal-frequency buckets, and the two-sample KS statistic
against the baseline's quantile sketch, with the baseline's row count as the reference size
(exact when the sketch holds every baseline value). Text: PSI over the baseline's categories
plus an `other` bucket, and values outside the constraint's domain. Every column: the rise of
missing values over the baseline, ill-typed values, and missing values in a column the schema
declares non-nullable. Each column is scanned a handful of times with no sort and no per-row
Python (see `counts_at`).

Sampling noise: every distribution test must also be significant at `noise_pvalue` (KS: at
`ks_pvalue`), so small samples do not flag drift by chance; with fewer than
`monitoring.min_rows` values a column's distribution is "insufficient data", not judged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_kit import metrics
from mlops_kit.config.model import METRICS, MonitoringConfig, Schema
from mlops_kit.monitoring.baseline import Baseline
from mlops_kit.monitoring.columns import Numbers, Texts, numbers, texts

PRIOR_COUNT = 0.5  # added to each bucket's count (Jeffreys), so an empty bucket stays finite
NULL_DRAWS = 1000  # samples of the PSI's no-drift distribution (see `psi_null`)
CHI2_MIN_COUNT = 5  # values expected per bucket for the chi-square law of PSI (Cochran)
TABLE_CELLS = 1 << 16
EXACT_KS_SIZE = 10_000
OK, DRIFT, INSUFFICIENT = "ok", "drift", "insufficient data"


class DriftInputError(ValueError):
    """Rows that cannot be compared with the baseline (no rows, columns missing)."""


@dataclass
class FeatureDrift:
    """One column's drift figures, broken constraints and the reasons it counts as drifted."""

    name: str
    kind: str
    rows: int
    missing_baseline: float
    missing_current: float
    baseline_rows: int = 0
    psi: float | None = None
    psi_noise: float = 0.0  # the mean PSI that sampling alone gives, added to the threshold
    psi_critical: float = 0.0  # the PSI sampling alone exceeds with chance `noise_pvalue`
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    violations: dict[str, int] = field(default_factory=dict)
    new_values: list[str] = field(default_factory=list)
    bins: dict[str, list[Any]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    insufficient: bool = False  # fewer than `min_rows` values: the distribution is not judged

    @property
    def drifted(self) -> bool:
        return bool(self.reasons)

    @property
    def status(self) -> str:
        """`drift`, `insufficient data` (too few values to judge, no broken constraint) or `ok`."""
        return DRIFT if self.drifted else INSUFFICIENT if self.insufficient else OK


@dataclass
class QualityResult:
    """Model quality on labelled rows against the registered value of the same metric."""

    metric: str
    value: float
    baseline: float
    change: float
    rows: int
    degraded: bool


@dataclass
class DriftReport:
    """Per-feature drift, the optional quality check, and the verdict."""

    rows: int
    baseline_rows: int
    thresholds: dict[str, Any]
    features: list[FeatureDrift]
    quality: QualityResult | None = None

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def insufficient_features(self) -> list[str]:
        return [f.name for f in self.features if f.status == INSUFFICIENT]

    @property
    def verdict(self) -> str:
        """`drift` when a feature drifted or broke a constraint, or quality dropped; else
        `insufficient data` when some feature had too few values to judge; else `ok`."""
        degraded = self.quality is not None and self.quality.degraded
        if self.drifted_features or degraded:
            return DRIFT
        return INSUFFICIENT if self.insufficient_features else OK

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only."""
        out = asdict(self)
        for row, feature in zip(out["features"], self.features, strict=True):
            row["drifted"], row["status"] = feature.drifted, feature.status
        out["verdict"] = self.verdict
        out["drifted_features"] = self.drifted_features
        out["insufficient_features"] = self.insufficient_features
        return _finite(out)


def compute_drift(frame: pd.DataFrame, baseline: Baseline,
                  thresholds: MonitoringConfig | None = None,
                  schema: Schema | None = None) -> DriftReport:
    """Compare `frame` (source rows) with `baseline`, column by column; with `schema`, a
    missing value in a non-nullable column is a violation (`null`)."""
    cfg = thresholds or MonitoringConfig()
    missing = [c for c in baseline.columns if c not in frame.columns]
    if missing:
        raise DriftInputError(f"columns of the baseline missing from the input: {missing}")
    if frame.empty:
        raise DriftInputError("the input has no rows")
    required = {c.name for c in schema.columns if not c.nullable} if schema else set()
    rows = [_feature(name, frame[name], baseline, cfg, name in required)
            for name in baseline.columns]
    keys = ("psi_threshold", "noise_pvalue", "ks_pvalue", "ks_min_statistic",
            "missing_increase", "max_violation_fraction", "quality_drop", "min_rows")
    return DriftReport(len(frame), baseline.item_count,
                       {k: getattr(cfg, k) for k in keys}, rows)


def compute_quality(y_true: np.ndarray, y_pred: np.ndarray, task: str,
                    baseline_metric_value: float, quality_drop: float,
                    metric: str | None = None) -> QualityResult:
    """Quality of `y_pred`; degraded when it is worse than the baseline by over `quality_drop`."""
    name = metric or METRICS[task][0]
    value = metrics.compute(task, np.asarray(y_true), np.asarray(y_pred))[name]
    change = metrics.gain(name, value, baseline_metric_value)
    degraded = bool(value == value and change < -quality_drop)  # undefined (NaN) is not a drop
    return QualityResult(name, float(value), float(baseline_metric_value), float(change),
                         len(y_true), degraded)


def label_check(labels: pd.Series, classes: list[Any], cfg: MonitoringConfig) -> FeatureDrift:
    """The target's row: labels outside the model's classes are `unseen_label` violations
    (judged like any constraint), so one new label is reported, not fatal."""
    unseen = labels[~labels.isin(classes)]
    out = FeatureDrift(str(labels.name), "target", len(labels), 0.0, 0.0,
                       violations={"unseen_label": len(unseen)},
                       new_values=[str(v) for v in unseen.value_counts().index[:10]])
    _judge(out, cfg)
    return out


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two count vectors over the same buckets (each count
    plus `PRIOR_COUNT`, so an empty bucket weighs like half a value, not like infinity)."""
    return float(_psi(np.asarray(expected, dtype="float64"), np.asarray(actual, dtype="float64")))


def _psi(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """`psi` along the last axis (one PSI per row of 2-D counts)."""
    p, q = expected + PRIOR_COUNT, actual + PRIOR_COUNT
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum(axis=-1, keepdims=True)
    out: np.ndarray = np.sum((q - p) * np.log(q / p), axis=-1)
    return out


def psi_null(expected: np.ndarray, actual: np.ndarray, pvalue: float) -> tuple[float, float]:
    """The PSI of two samples (of the sizes of `expected` and `actual`) of one distribution:
    its mean and the value it exceeds with chance `pvalue`. With at least `CHI2_MIN_COUNT`
    values expected in every bucket of both samples, PSI is chi-square distributed,
    chi2(k - 1) * (1/n + 1/m) for k buckets; with fewer that misses the long tail, so both
    samples are drawn `NULL_DRAWS` times from the pooled bucket shares instead (a seeded
    parametric bootstrap, so a report is reproducible)."""
    from scipy.stats import chi2

    e, a = np.asarray(expected, dtype="float64"), np.asarray(actual, dtype="float64")
    m, n = int(e.sum()), int(a.sum())
    if not m or not n:
        return 0.0, 0.0
    pooled = (e + a) / (m + n)
    if pooled.min() * min(m, n) >= CHI2_MIN_COUNT:
        scale, k = 1 / n + 1 / m, len(pooled)
        return float((k - 1) * scale), float(chi2.ppf(1.0 - pvalue, k - 1) * scale)
    rng = np.random.default_rng(0)
    draws = _psi(rng.multinomial(m, pooled, NULL_DRAWS).astype("float64"),
                 rng.multinomial(n, pooled, NULL_DRAWS).astype("float64"))
    return float(draws.mean()), float(np.quantile(draws, 1.0 - pvalue))


def missing_pvalue(missing: int, rows: int, baseline_share: float, baseline_rows: int) -> float:
    """The chance of at least `missing` missing values in `rows` at the baseline's share (the
    share taken with half a value, so a baseline with none still allows a few)."""
    from scipy.stats import binom

    if not missing:
        return 1.0
    share = (baseline_share * baseline_rows + PRIOR_COUNT) / (baseline_rows + 1)
    return float(binom.sf(missing - 1, rows, share))


def ks_pvalue(statistic: float, n_ref: int, n_cur: int) -> float:
    """Two-sided p-value of a two-sample KS statistic: scipy's `asymp` mode (Smirnov's
    distribution at the effective size) up to 10,000, Kolmogorov's limit beyond (as fast)."""
    from scipy.stats import kstwo, kstwobign

    big, small = max(n_ref, n_cur), min(n_ref, n_cur)
    size = big * small / (big + small)
    if size <= EXACT_KS_SIZE:
        return float(kstwo.sf(statistic, round(size)))
    return float(kstwobign.sf(statistic * np.sqrt(size)))


def counts_at(x: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted unique `points`, how many `x` are <= each point and how many equal it.

    `np.searchsorted(points, x)` would cost a binary search per value. Instead each value
    maps to one of 65,536 equal-width cells over the points' range; a cell with no point
    in it fixes the value's rank by a table look-up, and only values in the few cells that
    hold a point are searched. The cell map is monotone, so the ranks are exact.
    """
    m = len(points)
    lo, hi = float(points[0]), float(points[-1])
    if not hi > lo:  # one point
        return np.array([np.count_nonzero(x <= hi)]), np.array([np.count_nonzero(x == hi)])
    scale = (TABLE_CELLS - 1) / (hi - lo)

    def cell(v: np.ndarray) -> np.ndarray:
        t = np.subtract(v, lo)
        np.multiply(t, scale, out=t)
        np.clip(t, 0, TABLE_CELLS - 1, out=t)
        return t.astype(np.intp)

    first = np.searchsorted(cell(points), np.arange(TABLE_CELLS + 1), side="left")
    cells = cell(x)
    rank = first[cells]  # points strictly below each value, where its cell holds no point
    hit = np.flatnonzero((np.diff(first) > 0)[cells])
    near = x[hit]
    rank[hit] = np.searchsorted(points, near, side="left")
    equal = near == points[np.minimum(rank[hit], m - 1)]
    at_or_below = np.cumsum(np.bincount(rank, minlength=m + 1)[:m])
    ties = np.bincount(rank[hit][equal], minlength=m)[:m]
    return at_or_below, ties


def _feature(name: str, series: pd.Series, baseline: Baseline,
             cfg: MonitoringConfig, required: bool = False) -> FeatureDrift:
    kind = baseline.source_type(name)
    stats, rule = baseline.feature(name), baseline.constraint(name)
    col: Numbers | Texts
    if "numerical_statistics" in stats:
        col = numbers(series, kind)
        out = _numeric_drift(name, col, stats, rule, kind, cfg)
    else:
        col = texts(series, kind)
        out = _text_drift(name, col, stats, rule, cfg)
    if required:
        out.violations["null"] = col.missing
    out.insufficient = len(col.values) < cfg.min_rows
    _judge(out, cfg)
    return out


def _start(name: str, kind: str, col: Numbers | Texts, common: dict[str, Any],
           rule: dict[str, Any]) -> FeatureDrift:
    """A feature's row with its missing shares (baseline: 1 - completeness) and ill-typed count."""
    seen = int(common["num_present"]) + int(common["num_missing"])
    before = 1.0 - float(rule.get("completeness", 1.0 - int(common["num_missing"]) / max(seen, 1)))
    return FeatureDrift(name, kind, col.rows, before, col.missing / col.rows,
                        baseline_rows=seen, violations={"type": col.bad})


def _numeric_drift(name: str, col: Numbers, stats: dict[str, Any], rule: dict[str, Any],
                   kind: str, cfg: MonitoringConfig) -> FeatureDrift:
    num = stats["numerical_statistics"]
    n_ref = int(num["common"]["num_present"])
    out = _start(name, "timestamp" if kind == "timestamp" else "numeric", col, num["common"],
                 rule)
    x = col.values
    if rule.get("num_constraints", {}).get("is_non_negative"):
        out.violations["negative"] = int(np.count_nonzero(x < 0))
    kll = num["distribution"]["kll"]
    if kind == "timestamp" or not len(x) or not n_ref or not kll.get("buckets"):
        return out
    points, cdf = _reference_cdf(kll["sketch"]["data"])
    at_or_below, ties = counts_at(x, points)
    below = at_or_below - ties
    n = len(x)
    prev = np.concatenate([[0.0], cdf[:-1]])
    out.ks_statistic = float(max(np.abs(at_or_below / n - cdf).max(),
                                 np.abs(below / n - prev).max()))
    out.ks_pvalue = ks_pvalue(out.ks_statistic, n_ref, n)
    edges = np.array([b["lower_bound"] for b in kll["buckets"][1:]], dtype="float64")
    expected = np.array([b["count"] for b in kll["buckets"]], dtype="float64")
    actual = np.diff(np.concatenate([[0], _count_below(x, edges, points, below), [n]]))
    out.psi = psi(expected, actual)
    out.psi_noise, out.psi_critical = psi_null(expected, actual, cfg.noise_pvalue)
    out.bins = {"edges": edges.tolist(), "baseline": _shares(expected),
                "current": _shares(actual)}
    return out


def _reference_cdf(levels: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct sketch values and the baseline CDF at each (a KLL item weighs 2**level)."""
    values = np.concatenate([np.asarray(v, dtype="float64") for v in levels])
    weights = np.concatenate([np.full(len(v), 2.0**i) for i, v in enumerate(levels)])
    points, inverse = np.unique(values, return_inverse=True)
    mass = np.bincount(inverse, weights=weights, minlength=len(points))
    return points, np.cumsum(mass) / mass.sum()


def _count_below(x: np.ndarray, edges: np.ndarray, points: np.ndarray,
                 below: np.ndarray) -> np.ndarray:
    """How many `x` are below each edge: read off `below` when edges are sketch points."""
    at = np.minimum(np.searchsorted(points, edges), len(points) - 1)
    if np.array_equal(points[at], edges):
        return below[at]
    return np.array([np.count_nonzero(x < e) for e in edges])


def _text_drift(name: str, col: Texts, stats: dict[str, Any],
                rule: dict[str, Any], cfg: MonitoringConfig) -> FeatureDrift:
    txt = stats["string_statistics"]
    n_ref = int(txt["common"]["num_present"])
    out = _start(name, "categorical", col, txt["common"], rule)
    buckets = txt["distribution"]["categorical"]["buckets"]
    values = [str(b["value"]) for b in buckets]
    seen = pd.Index(col.values)
    codes = pd.Index(values).get_indexer(seen)
    known = np.bincount(codes[codes >= 0], minlength=len(values))
    n = len(col.values)
    expected = np.array([b["count"] for b in buckets] + [n_ref - sum(b["count"]
                                                                     for b in buckets)])
    actual = np.concatenate([known, [n - known.sum()]])
    domain = rule.get("string_constraints", {}).get("domains")
    if domain is not None:
        inside = codes >= 0 if domain == values else (
            pd.Index(domain).get_indexer(seen) >= 0)
        outside = col.values[~inside]
        out.violations["domain"] = len(outside)
        out.new_values = [str(v) for v in outside.value_counts().index[:10]]
    if n and n_ref:
        out.psi = psi(expected, actual)
        out.psi_noise, out.psi_critical = psi_null(expected, actual, cfg.noise_pvalue)
        out.bins = {"labels": [*values, "other"], "baseline": _shares(expected),
                    "current": _shares(actual)}
    return out


def _finite(obj: Any) -> Any:
    """`obj` with NaN and infinities as None (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _shares(counts: np.ndarray) -> list[float]:
    total = max(float(np.sum(counts)), 1.0)
    return [float(c) / total for c in counts]


def _judge(out: FeatureDrift, cfg: MonitoringConfig) -> None:
    """Fill `reasons` from the thresholds. A distribution test needs `min_rows` values and
    must beat sampling noise too; a constraint counts at any size."""
    if not out.insufficient:
        if (out.psi is not None and out.psi >= cfg.psi_threshold + out.psi_noise
                and out.psi > out.psi_critical):
            out.reasons.append("psi")
        if (out.ks_pvalue is not None and out.ks_statistic is not None
                and out.ks_pvalue < cfg.ks_pvalue and out.ks_statistic >= cfg.ks_min_statistic):
            out.reasons.append("ks")
    if out.rows >= cfg.min_rows and _missing_rose(out, cfg):
        out.reasons.append("missing")
    for kind, count in out.violations.items():
        if count and count / out.rows > cfg.max_violation_fraction:
            out.reasons.append(kind)


def _missing_rose(out: FeatureDrift, cfg: MonitoringConfig) -> bool:
    """Missing values rose by over `missing_increase`, beyond what sampling explains."""
    if out.missing_current - out.missing_baseline <= cfg.missing_increase:
        return False
    count = round(out.missing_current * out.rows)
    return missing_pvalue(count, out.rows, out.missing_baseline,
                          out.baseline_rows) < cfg.noise_pvalue
