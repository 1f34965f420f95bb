"""Config rules: what a cloud would refuse, found before anything is built.

A rule is a small pure function of one environment's config (loaded with its overrides) that
returns its problems. Each cloud's rules are in `adapters/<cloud>/rules.py`; the rules several
clouds share are here. `mlops-kit validate` runs them all (`adapters/checks.py`), and the CDK
app and the Pulumi program run the same functions before they register any resource, so a
config that `validate` accepts is not refused later for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mlops_kit.config import ConfigError, LoadedConfig
from mlops_kit.config.model import ProjectConfig
from mlops_kit.cron import weekly_minutes
from mlops_kit.image import dockerfile_problem
from mlops_kit.pipeline import load_pipeline


@dataclass(frozen=True)
class Problem:
    """One config value a cloud would refuse: the file, the field, what is wrong and the fix."""

    file: str
    field: str
    message: str  # starts with the field: "monitoring.schedule '0 3 1 * *': ...; the fix"
    env: str | None = None  # the environment whose cloud refuses it; None: the file itself

    def __str__(self) -> str:
        where = f" (environment {self.env})" if self.env else ""
        return f"{self.file}: {self.message}{where}"


Rule = Callable[[LoadedConfig], list[Problem]]
WEEK_MINUTES = 7 * 1440


def problem(loaded: LoadedConfig, field: str, message: str) -> Problem:
    """A problem of `loaded`'s environment; `message` names the field, the value and the fix."""
    return Problem(str(loaded.path), field, message, loaded.env)


def run(rules: Iterable[Rule], loaded: LoadedConfig) -> list[Problem]:
    """Every rule's problems, in rule order, each once."""
    return list(dict.fromkeys(p for rule in rules for p in rule(loaded)))


def from_error(text: str) -> list[Problem]:
    """The lines of a ConfigError (`<file>[:line]: <field>: ...` each) as problems."""
    out = []
    for line in text.splitlines():
        file, _, rest = line.partition(": ")
        out.append(Problem(file, rest.split(":", 1)[0], rest))
    return out


def message(problems: list[Problem]) -> str:
    """The problems as the error text the CDK app, the Pulumi program and `validate` print."""
    return "\n".join(str(p) for p in problems)


def listing(names: Iterable[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    items = list(names)
    return " and ".join(filter(None, [", ".join(items[:-1]), items[-1]]))


def requests_logged(config: ProjectConfig) -> bool:
    """Endpoints log request payloads (capture on, with inputs, sampled above 0): the cloud
    drift monitors have input, so they are built and scheduled."""
    capture = config.serving.capture
    return capture.enabled and capture.inputs and capture.sampling_percent > 0


# --- rules of several clouds ----------------------------------------------------------------


def pipeline_file(loaded: LoadedConfig) -> list[Problem]:
    """The pipeline file loads and matches the step modules (every cloud renders it)."""
    try:
        load_pipeline(loaded)
    except ConfigError as exc:
        return from_error(str(exc))
    return []


def image_dockerfile(loaded: LoadedConfig) -> list[Problem]:
    """`image.dockerfile` exists: the cloud builds the project image from it."""
    found = dockerfile_problem(loaded)
    return [problem(loaded, "image.dockerfile", found)] if found else []


def time_zone(loaded: LoadedConfig) -> list[Problem]:
    """`training.time_zone` is an IANA zone: EventBridge Scheduler and Cloud Scheduler take
    nothing else, and the drift monitors compute their windows in it."""
    zone = loaded.config.training.time_zone
    try:
        ZoneInfo(zone)
    except (ValueError, ZoneInfoNotFoundError):
        return [problem(loaded, "training.time_zone", (
            f"training.time_zone {zone!r}: not an IANA time zone; use a name of the tz "
            "database such as UTC, Europe/Paris or America/New_York"))]
    return []


def weekly_monitor_schedule(loaded: LoadedConfig) -> list[Problem]:
    """`monitoring.schedule` is weekly when a drift monitor runs: it reads the period since the
    schedule's previous firing (`cron.last_window`), which only a weekly cron defines."""
    expr = loaded.config.monitoring.schedule
    if not requests_logged(loaded.config):
        return []
    try:
        weekly_minutes(expr)
    except ValueError as exc:
        return [problem(loaded, "monitoring.schedule", (
            f"monitoring.schedule {expr!r}: the drift monitor needs a weekly cron, with day of "
            f"month and month `*` (e.g. '0 3 * * *', or '0 3 * * 1' for Mondays): {exc}"))]
    return []


def capture_retention(loaded: LoadedConfig) -> list[Problem]:
    """`serving.capture.retention_days` keeps at least the drift monitor's longest window (the
    longest gap between `monitoring.schedule`'s firings), or the lifecycle rules would delete
    traffic before it is checked."""
    config = loaded.config
    if not requests_logged(config):
        return []
    try:
        fired = weekly_minutes(config.monitoring.schedule)
    except ValueError:  # not weekly: `weekly_monitor_schedule` says so
        return []
    gap = max(b - a for a, b in zip(fired, [*fired[1:], fired[0] + WEEK_MINUTES], strict=True))
    days = config.serving.capture.retention_days
    if days * 1440 >= gap:
        return []
    return [problem(loaded, "serving.capture.retention_days", (
        f"serving.capture.retention_days {days}: shorter than the drift monitor's window of "
        f"{gap / 1440:g} days (monitoring.schedule {config.monitoring.schedule!r}), so captured "
        f"traffic would be deleted before it is checked; keep at least {-(-gap // 1440)} days "
        "or run the monitor more often"))]
