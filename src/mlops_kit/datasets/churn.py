"""The example data set: monthly customer snapshots with a churn label.

Deterministic under its seed, with real signal (contract, tenure, charges, support calls,
payment and service), yearly seasonality, a small share of deliberately dirty rows (to show
quarantine at work) and a `shift` knob that moves the distributions and changes who churns
(covariate and concept drift), as the world does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENTS = ("electronic_check", "mailed_check", "bank_transfer", "credit_card")
INTERNET = ("dsl", "fiber", "none")


def generate(rows: int, seed: int = 7, shift: float = 0.0, start: str = "2025-01-01",
             dirty_fraction: float = 0.01) -> pd.DataFrame:
    """`rows` snapshots of about rows/4 customers over one year, typed as a clean source."""
    rng = np.random.default_rng(seed)
    customers = max(rows // 4, 1)
    cust = rng.integers(0, customers, rows)
    day = rng.integers(0, 365, rows)
    t0 = np.datetime64(start, "s")
    event_time = t0 + (day * 86_400 + rng.integers(0, 86_400, rows)).astype("timedelta64[s]")

    mix = np.array([0.55, 0.25, 0.20]) + np.array([0.15, -0.1, -0.05]) * shift
    contract = _pick(rng, rows, CONTRACTS, mix)
    payment = _pick(rng, rows, PAYMENTS, [0.35, 0.2, 0.22, 0.23])
    internet = _pick(rng, rows, INTERNET, [0.35, 0.45, 0.20])
    tenure = np.clip(rng.gamma(2.0, 14.0, rows) - 6 * shift, 0, 72).astype(np.int64)
    charges = np.clip(rng.normal(65 + 15 * shift, 22, rows), 18, 150).round(2)
    total = np.where(tenure == 0, np.nan, (charges * tenure * rng.uniform(0.9, 1.1, rows)).round(2))
    calls = rng.poisson(1.2 + 0.8 * shift, rows).clip(0, 20)
    age = rng.normal(45, 14, rows).clip(18, 95).round().astype("float64")
    age[rng.random(rows) < 0.03] = np.nan

    month = ((day // 30.4) % 12).astype(np.float64)
    age_filled = np.nan_to_num(age, nan=45.0)
    logit = (
        -1.6
        + 1.3 * (contract == "month-to-month") - 0.6 * (contract == "two-year")
        - 0.035 * tenure + 0.018 * (charges - 65) + 0.35 * calls
        + 0.5 * (payment == "electronic_check") + 0.45 * (internet == "fiber")
        + 0.35 * np.sin(2 * np.pi * month / 12)
        # concept drift: with `shift`, fiber customers leave for a rival offer and older
        # customers on two-year contracts stop being safe
        + shift * (1.2 * (internet == "fiber") + 0.03 * (age_filled - 45)
                   + 0.8 * (contract == "two-year"))
        + rng.logistic(0, 0.6, rows)
    )
    churned = (logit > 0).astype(np.int64)

    df = pd.DataFrame({
        "customer_id": np.char.add("C", np.char.zfill(cust.astype(str), 7)),
        "event_time": event_time,
        "tenure_months": tenure,
        "monthly_charges": charges,
        "total_charges": total,
        "contract": contract,
        "payment_method": payment,
        "internet_service": internet,
        "support_calls": calls,
        "age": age,
        "churned": churned,
    })
    return _make_dirty(df, rng, dirty_fraction)


def _pick(rng: np.random.Generator, n: int, values: tuple[str, ...], p: object) -> np.ndarray:
    probs = np.clip(np.asarray(p, dtype=float), 0.01, None)
    return rng.choice(np.array(values, dtype=object), size=n, p=probs / probs.sum())


def _make_dirty(df: pd.DataFrame, rng: np.random.Generator, fraction: float) -> pd.DataFrame:
    """Spoil a few rows the way real feeds do: out of range, unknown category, missing id."""
    n = int(len(df) * fraction)
    if n == 0:
        return df
    df = df.astype({"contract": object, "age": object})
    idx = rng.choice(len(df), size=n, replace=False)
    kinds = rng.integers(0, 4, n)
    df.loc[idx[kinds == 0], "monthly_charges"] = -1.0
    df.loc[idx[kinds == 1], "contract"] = "lifetime"
    df.loc[idx[kinds == 2], "customer_id"] = None
    df.loc[idx[kinds == 3], "age"] = 240.0
    return df
