"""False drift on small samples: the share of features `compute_drift` flags on rows drawn from
the baseline's own distribution, and the share it catches when the rows are shifted.

Run from the repository root:

    .venv/bin/python bench/drift_false_alarms.py              # 200 trials per size
    .venv/bin/python bench/drift_false_alarms.py --trials 50  # quicker

The baseline: 12,000 clean rows of the churn generator (seed 1), the columns the example's
features read. Each trial draws a fresh sample (seed 1000 + trial) of 30, 100 or 1,000 rows,
unshifted (false drift) and shifted by `--shift` (caught drift). Every size runs twice: with
the default `monitoring.min_rows` (under it a feature is "insufficient data") and with
`min_rows` 1, so the noise allowance itself is measured at 30 rows. Prints a Markdown table
(docs/monitoring.md holds one) and writes `bench/results/drift_false_alarms.json`.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from mlops_kit.config import load_config
from mlops_kit.config.model import MonitoringConfig
from mlops_kit.datasets.churn import generate
from mlops_kit.monitoring import Baseline, compute_baseline, compute_drift

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "drift_false_alarms.json"
COLUMNS = ["event_time", "tenure_months", "monthly_charges", "total_charges", "contract",
           "payment_method", "internet_service", "support_calls", "age"]
SIZES = (30, 100, 1000)


def baseline() -> Baseline:
    """The baseline of 12,000 clean rows, as the features step makes it."""
    schema = load_config(ROOT / "mlops.yaml").config.table
    return compute_baseline(generate(12_000, seed=1, dirty_fraction=0.0)[COLUMNS], schema)


def rates(base: Baseline, rows: int, trials: int, shift: float,
          cfg: MonitoringConfig) -> dict[str, Any]:
    """Shares of feature checks flagged as drift and found insufficient, and of samples with
    a drift verdict, over `trials`."""
    status: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    for trial in range(trials):
        frame = generate(rows, seed=1000 + trial, shift=shift, dirty_fraction=0.0)[COLUMNS]
        report = compute_drift(frame, base, cfg)
        verdicts[report.verdict] += 1
        for feature in report.features:
            status[feature.status] += 1
            reasons.update(feature.reasons)
    checks = trials * len(COLUMNS)
    return {"rows": rows, "shift": shift, "min_rows": cfg.min_rows, "trials": trials,
            "drift": status["drift"] / checks, "insufficient": status["insufficient data"] / checks,
            "samples_drift": verdicts["drift"] / trials, "reasons": dict(reasons)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--shift", type=float, default=1.0)
    args = parser.parse_args()
    base = baseline()
    default = MonitoringConfig()
    results = [rates(base, n, args.trials, shift, cfg)
               for cfg in (default, MonitoringConfig(min_rows=1))
               for n in SIZES for shift in (0.0, args.shift)]
    print("| rows | min_rows | same distribution: features flagged | samples with a drift "
          f"verdict | insufficient data | shifted by {args.shift:g}: features flagged "
          "| samples with a drift verdict |")
    print("|---|---|---|---|---|---|---|")
    for same, moved in zip(results[::2], results[1::2], strict=True):
        print(f"| {same['rows']:,} | {same['min_rows']} | {same['drift']:.1%} "
              f"| {same['samples_drift']:.1%} | {same['insufficient']:.0%} "
              f"| {moved['drift']:.1%} | {moved['samples_drift']:.1%} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
