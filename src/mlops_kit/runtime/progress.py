"""Progress per step while a run goes, and the summary table at the end."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from mlops_kit.runtime.runner import RunResult, StepRecord

STYLE = {"ran": "green", "cached": "cyan", "failed": "bold red", "not run": "dim"}


class StepProgress:
    """A listener for the runner: one spinner while a step runs, one line when it ends."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.status: Status | None = None

    def __call__(self, event: str, rec: StepRecord) -> None:
        if event == "start":
            self.status = self.console.status(f"[bold]{rec.name}[/] running...")
            self.status.start()
            return
        if self.status is not None:
            self.status.stop()
        style = STYLE.get(rec.status, "")
        info = ", ".join(f"{k}={v}" for k, v in rec.summary.items())
        if rec.error:
            info = rec.error
        self.console.print(f"[{style}]{rec.status:>7}[/] {rec.name:<9} {rec.seconds:6.2f}s  "
                           f"{escape(info)}",
                           soft_wrap=True)

    def summary(self, result: RunResult) -> None:
        table = Table(title=f"run {result.run_id} on {result.target}: {result.status}")
        for col in ("step", "status", "seconds", "compute s"):
            table.add_column(col)
        for s in result.steps:
            table.add_row(s.name, f"[{STYLE.get(s.status, '')}]{s.status}[/]", f"{s.seconds:.2f}",
                          f"{s.compute_seconds:.2f}")
        self.console.print(table)
        self.console.print(f"total {result.seconds:.1f}s; manifest and report in {result.run_dir}")
