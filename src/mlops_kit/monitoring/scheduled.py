"""The command line of a scheduled drift monitor, shared by the cloud adapters' entries
(`python -m mlops_kit.adapters.gcp.monitor`, `... .azure.monitor`): arguments, the window to
read, the exit codes (0 a good run, 1 a failed or blind one, 2 a bad config)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence

from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.cron import last_window
from mlops_kit.monitoring.baseline import BaselineError
from mlops_kit.monitoring.check import DriftCheck, failure
from mlops_kit.monitoring.drift import DriftInputError
from mlops_kit.registry import RegistryError

Window = tuple[dt.datetime, dt.datetime]
CHECK_ERRORS: tuple[type[Exception], ...] = (RegistryError, BaselineError, DriftInputError,
                                              ValueError)


def window_of(loaded: LoadedConfig, now: dt.datetime, minutes: int | None) -> Window:
    """The period to read: `minutes` up to now, else the schedule's latest period."""
    if minutes is not None:
        end = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
        return end - dt.timedelta(minutes=minutes), end
    cfg = loaded.config
    return last_window(cfg.monitoring.schedule, now, cfg.training.time_zone)


def main(prog: str, backend: str, argv: Sequence[str] | None,
         run: Callable[[LoadedConfig, Window], DriftCheck],
         errors: tuple[type[Exception], ...], now: dt.datetime | None = None) -> int:
    """Parse the arguments, run the check of one model on the registry `backend`, print the
    summary; `errors` are the adapter's own failures (exit 1 with the message)."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--config", default="/opt/mlops/mlops.yaml")
    parser.add_argument("--env", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--window-minutes", type=int, default=None,
                        help="read this many minutes up to now (default: the schedule's period)")
    args = parser.parse_args(argv)
    try:
        loaded = load_config(args.config, env=args.env, model=args.model,
                             sets=[f"registry.backend={backend}"])
        result = run(loaded, window_of(loaded, now or dt.datetime.now(dt.UTC),
                                       args.window_minutes))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (*errors, *CHECK_ERRORS) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.summary(), default=str))
    problem = failure(result)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problem else 0
