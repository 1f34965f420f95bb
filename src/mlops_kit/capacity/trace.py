"""Traffic traces: requests per minute from a CSV file, or the built-in week profile."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import median_filter

RATE_COLUMNS = ("rpm", "requests_per_minute", "requests")
MINUTES_PER_DAY = 1440


class TraceError(ValueError):
    """A traffic trace that cannot be used: the message names the file, line and fix."""


@dataclass(frozen=True)
class Trace:
    """Requests per minute, one value per minute from `start_minute` of a week (0: Mon 00:00)."""

    name: str
    rpm: np.ndarray
    start_minute: int = 0

    def __post_init__(self) -> None:
        check_rates(self.rpm, self.name)

    @property
    def minutes(self) -> int:
        return len(self.rpm)

    @property
    def peak(self) -> float:
        return float(self.rpm.max())

    def scaled(self, factor: float) -> Trace:
        """The same shape with every minute multiplied by `factor`."""
        return Trace(self.name, self.rpm * factor, self.start_minute)


def check_rates(rpm: np.ndarray, name: str) -> None:
    """Raise TraceError unless `rpm` is a non-empty 1-D array of finite rates >= 0."""
    if rpm.ndim != 1 or len(rpm) == 0:
        raise TraceError(f"{name}: the trace is empty; give at least one minute of requests")
    bad = np.flatnonzero(~np.isfinite(rpm) | (rpm < 0))
    if len(bad):
        raise TraceError(f"{name}: minute {int(bad[0])} has rate {rpm[bad[0]]!r}; every "
                         "minute needs a finite number of requests >= 0")
    if not rpm.any():
        raise TraceError(f"{name}: every minute has 0 requests; there is nothing to plan for")


def noise_replicates(rpm: np.ndarray, count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` copies of the trace with its minute-to-minute noise redrawn: each minute's ratio
    to the 5-minute rolling median, shuffled within its hour, on the same median (the level,
    the daily shape and the surges are kept; which minute of an hour is noisy is not). A minute
    whose median is 0 (sparse traffic) keeps its own requests."""
    rpm = np.asarray(rpm, dtype="float64")
    level = median_filter(rpm, size=5, mode="nearest")
    ratio = np.divide(rpm, level, out=np.ones_like(rpm), where=level > 0)
    level = np.where(level > 0, level, rpm)  # a sparse minute keeps its own requests
    rng = np.random.default_rng(seed)
    hours = np.split(np.arange(len(rpm)), range(60, len(rpm), 60))
    out = []
    for _ in range(count):
        shuffled = ratio.copy()
        for hour in hours:
            shuffled[hour] = rng.permutation(ratio[hour])
        out.append(np.round(level * shuffled))
    return out


def load_trace(path: Path) -> Trace:
    """A CSV of requests per minute: one row a minute, a header naming the rate column
    (`rpm`, `requests_per_minute` or `requests`), or a single column with or without header."""
    if not path.is_file():
        raise TraceError(f"{path}: no such file; give a CSV of requests per minute or 'week'")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if any(cell.strip() for cell in r)]
    if not rows:
        raise TraceError(f"{path}: the file is empty; give one row of requests per minute")
    column, first = _rate_column(rows[0], path)
    values = []
    for line, row in enumerate(rows[first:], start=first + 1):
        values.append(_rate(row, column, line, path))
    if not values:
        raise TraceError(f"{path}: the file has a header but no rows of requests per minute")
    return Trace(path.name, np.asarray(values, dtype="float64"))


def _rate_column(head: list[str], path: Path) -> tuple[int, int]:
    """(index of the rate column, index of the first data row)."""
    names = [h.strip().lower() for h in head]
    for wanted in RATE_COLUMNS:
        if wanted in names:
            return names.index(wanted), 1
    if len(names) == 1:
        return 0, 0 if _is_number(names[0]) else 1
    raise TraceError(f"{path}: no rate column in the header {head}; name it one of "
                     f"{', '.join(RATE_COLUMNS)} or give a single column")


def _rate(row: list[str], column: int, line: int, path: Path) -> float:
    if column >= len(row):
        raise TraceError(f"{path}, line {line}: no value in the rate column")
    cell = row[column].strip()
    if not _is_number(cell):
        raise TraceError(f"{path}, line {line}: {cell!r} is not a number of requests per minute")
    value = float(cell)
    if not math.isfinite(value) or value < 0:
        raise TraceError(f"{path}, line {line}: rate {cell} must be a finite number >= 0")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- the built-in week --------------------------------------------------------------------


@dataclass(frozen=True)
class Spike:
    """A surge on top of the daily pattern: linear rise, plateau, linear fall (minutes)."""

    start: int
    rise: int
    hold: int
    fall: int
    height: float  # added share of the level at the time, e.g. 0.4 = +40 %

    def shape(self, minutes: int) -> np.ndarray:
        t = np.arange(minutes, dtype="float64") - self.start
        up = np.clip(t / self.rise, 0, 1)
        down = np.clip(1 - (t - self.rise - self.hold) / self.fall, 0, 1)
        return self.height * np.minimum(up, down) * (t >= 0)


def daily_shape(hours: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    """Share of the weekday peak by hour of day: a night trough near 04:00, a morning climb
    from 06:00 to a late-morning peak, a lunch dip, the afternoon peak and an evening tail;
    weekends peak later and lower."""
    h = np.where(weekend, hours - 1.5, hours)
    bumps = (0.62 * _bump(h, 10.5, 1.9) + 0.70 * _bump(h, 15.0, 2.3)
             + 0.28 * _bump(h, 20.5, 1.6) - 0.07 * _bump(h, 12.8, 0.6))
    level = 0.09 + bumps
    return np.where(weekend, 0.09 + 0.55 * (level - 0.09), level)


def _bump(h: np.ndarray, center: float, width: float) -> np.ndarray:
    d = (h - center + 12) % 24 - 12  # wraps around midnight
    return np.exp(-0.5 * (d / width) ** 2)


def week_spikes(rng: np.random.Generator, minutes: int, rise: tuple[int, int] = (10, 30),
                height: tuple[float, float] = (0.2, 0.5)) -> list[Spike]:
    """Seven surges a week at random daytime minutes (08:00-22:00): +20 % to +50 % of the
    level at the time, reached in 10 to 30 minutes, held 20 to 60, gone in 20 to 60."""
    spikes = []
    for day in rng.choice(7, size=7, replace=True):
        start = int(day) * MINUTES_PER_DAY + int(rng.integers(8 * 60, 22 * 60))
        spikes.append(Spike(start=start, rise=int(rng.integers(rise[0], rise[1] + 1)),
                            hold=int(rng.integers(20, 61)), fall=int(rng.integers(20, 61)),
                            height=float(rng.uniform(*height))))
    return [s for s in spikes if s.start < minutes]


def week_profile(peak_rpm: float = 60_000.0, seed: int = 7, days: int = 7,
                 spikes: bool = True, spike_rise: tuple[int, int] = (10, 30),
                 spike_height: tuple[float, float] = (0.2, 0.5)) -> Trace:
    """A week (Monday first) of requests per minute: the daily shape, a weekend dip, slow
    wander (AR(1), about 4 %), sudden surges (`week_spikes`), and per-minute counts drawn
    around that level (Poisson, with 1 % extra noise for bursty clients); scaled so that the
    weekday shape's peak is `peak_rpm`."""
    if peak_rpm <= 0:
        raise TraceError(f"peak_rpm must be > 0, got {peak_rpm}")
    rng = np.random.default_rng(seed)
    minutes = days * MINUTES_PER_DAY
    t = np.arange(minutes)
    weekend = (t // MINUTES_PER_DAY) % 7 >= 5
    base = daily_shape((t % MINUTES_PER_DAY) / 60.0, weekend)
    base = base / base[~weekend].max() if (~weekend).any() else base / base.max()
    wander = np.empty(minutes)
    wander[0] = 0.0
    shocks = rng.normal(0, 0.04 * math.sqrt(1 - 0.995**2), minutes)
    for i in range(1, minutes):
        wander[i] = 0.995 * wander[i - 1] + shocks[i]
    events = week_spikes(rng, minutes, spike_rise, spike_height) if spikes else []
    surge = sum((s.shape(minutes) for s in events), np.zeros(minutes))
    level = peak_rpm * base * np.exp(wander) * (1 + surge)
    counts = rng.poisson(np.maximum(0.0, level * (1 + rng.normal(0, 0.01, minutes))))
    return Trace(f"built-in week (peak {peak_rpm:,.0f}/min, seed {seed})",
                 counts.astype("float64"))
