"""The `mlops-kit` command line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlops_kit.config import ConfigError, LoadedConfig, load_config
from mlops_kit.errors import MlopsKitError
from mlops_kit.project.ci import SYSTEMS

if TYPE_CHECKING:
    from mlops_kit.api import Project

console = Console(stderr=False, highlight=False)
err = Console(stderr=True, highlight=False)
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document on stdout instead of text.")


def show(table: Table) -> None:
    """Print a table; off a terminal (a pipe, a file) as wide as it needs, never cut."""
    if console.is_terminal:
        console.print(table)
        return
    from rich.measure import Measurement

    wide = Measurement.get(console, console.options.update_width(1_000_000), table).maximum
    Console(highlight=False, width=max(wide, console.width)).print(table)


def print_json(doc: Any) -> None:
    """`doc` as one JSON document on stdout (plain text, no markup or wrapping)."""
    import json

    click.echo(json.dumps(doc, indent=2, default=str))


def project_of(loaded: LoadedConfig) -> Project:
    """The API's Project for this command's config (with its --set values)."""
    from mlops_kit.api import Project

    return Project(loaded, click.get_current_context().params.get("sets", ()))


def fail(kind: str, exc: BaseException | str, code: int = 1) -> NoReturn:
    """Print `kind: message` to stderr (the message verbatim, never read as markup) and exit."""
    err.print(f"[bold red]{kind}[/]: {escape(str(exc))}", soft_wrap=True)
    sys.exit(code)


def config_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--config`, `--env`, `--model` and `--set`, loaded into a LoadedConfig (`loaded`)."""

    @click.option("--config", "config_path", default="mlops.yaml", show_default=True,
                  type=click.Path(dir_okay=False), help="The project config.")
    @click.option("--env", default=None, help="Apply this environment's overrides.")
    @click.option("--model", "model_name", default=None,
                  help="Which of the config's models (default: the first).")
    @click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
                  help="Override one field, e.g. --set data.source.rows=100000 (YAML value).")
    @functools.wraps(fn)
    def wrapper(config_path: str, env: str | None, model_name: str | None,
                sets: tuple[str, ...], **kw: Any) -> Any:
        try:
            loaded = load_config(config_path, env=env, sets=list(sets), model=model_name)
        except ConfigError as exc:
            fail("config error", exc, 2)
        return fn(loaded=loaded, **kw)

    return wrapper


class _Group(click.Group):
    """Print any MlopsKitError as one line and exit with its code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlopsKitError as exc:
            fail(exc.kind, exc, exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlops-kit")
def main() -> None:
    """mlops-kit: the ML lifecycle from one config, locally and on AWS, Azure or GCP."""


@main.command()
@config_options
@json_option
def validate(loaded: LoadedConfig, as_json: bool) -> None:
    """Check a config: the file, its pipeline file, a CSV or Parquet source against the schema
    and the task, and every environment (or --env) against what its cloud's deploy (cdk synth,
    pulumi up) would refuse. Exit 2 with one line per problem, naming the file, the field and
    the fix (with --json: the problems in the JSON document, and exit 2)."""
    report = project_of(loaded).check()
    if as_json:
        print_json(report.to_dict())
        if report.problems:
            sys.exit(2)
        return
    for problem in report.problems:
        err.print(f"[bold red]config error[/]: {escape(str(problem))}", soft_wrap=True)
    if report.problems:
        sys.exit(2)
    cfg = loaded.config
    envs = ", ".join(f"{k} ({v})" for k, v in report.environments.items()) or "none"
    console.print(f"[green]ok[/] {loaded.path}: project {cfg.project}, model {cfg.model.name} "
                  f"({cfg.model.framework}, {cfg.model.task}), "
                  f"{len(cfg.table.columns)} columns, {len(cfg.features.declared)} features, "
                  f"environments checked: {envs}", soft_wrap=True)
    for line in report.notes:
        console.print(f"[yellow]note[/]: {escape(line)} (the validate step quarantines these "
                      "rows)", soft_wrap=True)
    for note in report.skipped:
        console.print(f"[yellow]not checked[/]: {escape(note)}", soft_wrap=True)


@main.command()
@config_options
@click.option("--target", type=click.Choice(["local", "moto"]), default="local",
              show_default=True, help="local files, or the AWS adapters against moto.")
@click.option("--no-cache", is_flag=True, help="Recompute every step.")
@click.option("--ingest-date", default=None, help="Ingestion date partition (default today).")
@click.option("--train-only", is_flag=True,
              help="Stop after the training pipeline (no serving, drift and retraining loop).")
@json_option
def run(loaded: LoadedConfig, target: str, no_cache: bool, ingest_date: str | None,
        train_only: bool, as_json: bool) -> None:
    """The lifecycle: ingest -> validate -> features -> train -> evaluate -> register, then
    (locally) serve, replay traffic, inject drift, detect it, retrain and canary-deploy.
    With --json the progress goes to stderr and the result is one JSON document on stdout."""
    from mlops_kit.registry import RegistryError
    from mlops_kit.runtime.deploy import DeployError
    from mlops_kit.runtime.loop import LoopFailed
    from mlops_kit.runtime.progress import StepProgress
    from mlops_kit.runtime.runner import RunFailed

    out = err if as_json else console
    progress = StepProgress(out)
    project = project_of(loaded)
    finished: list[Any] = []  # the training pipeline, once done: later errors are the loop's

    def trained(pipeline: Any) -> None:
        finished.append(pipeline)
        progress.summary(pipeline)
        if project.loops(target, train_only):
            out.rule("the loop: serve, monitor, retrain, deploy")

    def say(stage: str, message: str) -> None:
        out.print(f"[bold]{stage:>8}[/] {escape(message)}", soft_wrap=True)

    try:
        result = project.run(target, train_only=train_only, no_cache=no_cache,
                             ingest_date=ingest_date, listener=progress, trained=trained,
                             say=say)
    except ConfigError as exc:
        fail("config error", exc, 2)
    except RunFailed as exc:
        progress.summary(exc.result)
        fail("run failed", exc)
    except (LoopFailed, DeployError, RegistryError) as exc:
        if not finished:
            raise
        fail("loop stopped", exc)
    if result.loop_skipped:
        out.print(f"[yellow]loop skipped[/]: {escape(result.loop_skipped)}", soft_wrap=True)
    if result.loop:
        loop = result.loop
        out.print(f"[bold]loop outcome: {loop.outcome}[/] (version {loop.start_version} "
                  f"-> {loop.final_version}); report: {loop.folder / 'report.html'}",
                  soft_wrap=True)
    if as_json:
        print_json(result.to_dict())


@main.group()
def lake() -> None:
    """The local lake's catalog."""


@lake.command("repair")
@config_options
def lake_repair(loaded: LoadedConfig) -> None:
    """Rebuild catalog.json from the lake's table and partition folders (a catalog that
    cannot be read is kept as catalog.json.corrupt-<time>)."""
    from mlops_kit.runtime.lake import rebuild_catalog

    tables = rebuild_catalog(loaded)
    parts = sum(len(t.partitions) for t in tables)
    console.print(f"[green]rebuilt[/] {loaded.state_dir / 'catalog.json'}: {len(tables)} "
                  f"tables, {parts} partitions", soft_wrap=True)


@main.command()
@config_options
@click.argument("sql")
@click.option("--dialect", default="athena", show_default=True,
              type=click.Choice(["athena", "trino", "duckdb", "hive", "spark"]))
@click.option("--format", "fmt", default="table", type=click.Choice(["table", "csv", "json"]))
@click.option("--limit", default=50, show_default=True, help="Rows shown in table format.")
def query(loaded: LoadedConfig, sql: str, dialect: str, fmt: str, limit: int) -> None:
    """Query the lake's tables with SQL (Athena/Trino SQL is translated for DuckDB)."""
    import duckdb

    from mlops_kit.runtime.lake import query as run_query

    try:
        frame = run_query(loaded, sql, dialect)
    except (LookupError, ValueError, duckdb.Error) as exc:
        fail("query error", exc)
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", date_format="iso"))
    else:
        table = Table(*map(str, frame.columns))
        for row in frame.head(limit).itertuples(index=False):
            table.add_row(*(str(v) for v in row))
        show(table)
        console.print(f"{len(frame)} row(s)")


@main.command()
@config_options
@click.option("--version", "version", type=int, default=None,
              help="Put this registry version live first (all traffic).")
@click.option("--model-dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Serve this one model folder, outside the endpoint.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: serving.port (8080).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default: serving.workers, else the CPU count).")
@click.option("--no-capture", is_flag=True, help="Do not log requests and responses.")
def serve(loaded: LoadedConfig, version: int | None, model_dir: str | None, host: str,
          port: int | None, workers: int | None, no_capture: bool) -> None:
    """Serve the endpoint over HTTP: GET /ping, POST /invocations (SageMaker's contract).

    Variants, traffic weights and the shadow follow `mlops-kit deploy`, `rollback` and
    `shadow` while the server runs; the first start puts production (or --version) live.
    """
    from pathlib import Path

    from mlops_kit.runtime.serving import endpoint_settings, serve_settings
    from mlops_kit.serving.app import serve as run_server

    if model_dir and version:
        fail("usage error", "give --version or --model-dir, not both", 2)
    if model_dir:
        settings = serve_settings(loaded, Path(model_dir), "local", workers=workers,
                                  capture=not no_capture)
        what = f"model folder {model_dir}"
    else:
        settings = _endpoint_or_fail(lambda: endpoint_settings(
            loaded, version, workers=workers, capture=not no_capture))
        what = f"endpoint {Path(settings.endpoint_state or '').parent.name}"
    port = port or loaded.config.serving.port
    console.print(f"serving {what} on http://{host}:{port} with {settings.workers} worker(s); "
                  f"capture: {settings.capture_dir or 'off'}", soft_wrap=True)
    run_server(settings, host=host, port=port)


def _endpoint_or_fail(action: Callable[[], Any]) -> Any:
    """Run an endpoint action; registry and deployment errors exit 1 with their message."""
    from mlops_kit.registry import RegistryError
    from mlops_kit.runtime.deploy import DeployError

    try:
        return action()
    except (RegistryError, DeployError) as exc:
        fail("deploy error" if isinstance(exc, DeployError) else "registry error", exc)


@main.command()
@config_options
@click.option("--version", "version", type=int, default=None,
              help="Registry version (default: production, the newest approved).")
@click.option("--strategy", type=click.Choice(["all_at_once", "canary", "linear"]),
              default=None, help="Default: serving.deployment.strategy.")
@click.option("--wait", "wait_s", type=float, default=None,
              help="Bake seconds after each shift (default: serving.deployment.wait_s).")
def deploy(loaded: LoadedConfig, version: int | None, strategy: str | None,
           wait_s: float | None) -> None:
    """Blue/green deployment with traffic shifting and automatic rollback on alarms."""
    from mlops_kit.runtime.deploy import Deployer

    changes = {k: v for k, v in (("strategy", strategy), ("wait_s", wait_s)) if v is not None}
    cfg = loaded.config.serving.deployment.model_copy(update=changes)
    deployer = Deployer(loaded, deployment=cfg,
                        on_event=lambda m: console.print(f"  {escape(m)}", soft_wrap=True))
    result = _endpoint_or_fail(lambda: deployer.deploy(version))
    style = "green" if result.status in ("Succeeded", "NoChange") else "bold red"
    console.print(f"[{style}]{result.status}[/]: version {result.version}"
                  + (f" ({escape(result.reason)})" if result.reason else ""), soft_wrap=True)
    if result.status not in ("Succeeded", "NoChange"):
        sys.exit(1)


@main.command()
@config_options
def rollback(loaded: LoadedConfig) -> None:
    """All traffic back to the previous approved version, at once."""
    from mlops_kit.runtime.deploy import rollback as do_rollback

    result = _endpoint_or_fail(lambda: do_rollback(loaded))
    console.print(f"rolled back: version {result.previous} -> {result.version}"
                  if result.status == "Succeeded" else
                  f"deployment of version {result.version} stopped; all traffic on version "
                  f"{result.previous}")


@main.command()
@config_options
@click.argument("action", type=click.Choice(["show", "reset"]), default="show")
@json_option
def endpoint(loaded: LoadedConfig, action: str, as_json: bool) -> None:
    """The endpoint's variants, traffic, shadow, recent deployments and server workers; or
    `reset`: rebuild its state with the registry's production version (a corrupt state file
    is kept as a backup)."""
    from mlops_kit.runtime.deploy import reset_endpoint

    if action == "reset":
        version, backup = _endpoint_or_fail(lambda: reset_endpoint(loaded))
        if as_json:
            print_json({"version": version, "backup": str(backup) if backup else None})
            return
        console.print(f"endpoint state rebuilt: version {version} (production) has all traffic"
                      + (f"; the old file is kept as {backup}" if backup else ""),
                      soft_wrap=True)
        return
    status = project_of(loaded).endpoint()
    if as_json:
        print_json(status.to_dict())
        return
    state = status.state
    table = Table("variant", "version", "traffic",
                  title=f"endpoint {state.name} (generation {state.generation})")
    for v in state.variants:
        table.add_row(v.name, str(v.version), f"{v.weight:.0%}")
    if state.shadow:
        table.add_row(state.shadow.name, str(state.shadow.version),
                      f"shadow {state.shadow.weight:.0%}")
    show(table)
    history = Table("id", "version", "from", "strategy", "status", "started", "reason")
    for d in state.deployments[-10:]:
        history.add_row(d["id"], str(d["version"]), str(d["previous"] or ""), d["strategy"],
                        d["status"], d["started"], escape(d.get("reason") or ""))
    show(history)
    if state.current is not None:
        console.print(f"last deployment: {escape(_deployment_status(state.current))}",
                      soft_wrap=True)
    _print_workers(status.workers, state.generation)
    shown = ", ".join(f"{reason} {n}" for reason, n in sorted(status.refused.items())) or "none"
    console.print(f"refused before the app in the last hour (by limit): {shown}",
                  soft_wrap=True)


def _deployment_status(record: dict[str, Any]) -> str:
    """One line: the deployment's status, who holds or ended it, and why."""
    import time

    text = f"{record['id']} {record['status']}"
    lease = record.get("lease")
    if record["status"] == "InProgress" and lease:
        left = float(lease["until"]) - time.time()
        return text + (f", run by {lease['owner']} (lease {left:.0f} s more)" if left >= 0 else
                       f", its deployer {lease['owner']} is gone (lease expired {-left:.0f} s "
                       "ago): a running `mlops-kit serve` finishes or rolls it back")
    by = record.get("by")
    return text + (f" by {by}" if by else "") + (
        f": {record['reason']}" if record.get("reason") else "")


def _print_workers(workers: list[Any], generation: int) -> None:
    import time

    if not workers:
        console.print("server workers: none running")
        return
    table = Table("worker pid", "generation", "heartbeat", "errors", "last error",
                  title="server workers")
    for a in workers:
        behind = "" if a.generation >= generation else " (behind)"
        table.add_row(str(a.pid), f"{a.generation}{behind}",
                      f"{time.time() - a.heartbeat:.1f} s ago", str(a.errors),
                      escape(a.last_error))
    show(table)


@main.group()
def shadow() -> None:
    """Mirror live traffic to a candidate version and compare the answers."""


@shadow.command("start")
@config_options
@click.option("--version", "version", type=int, required=True)
@click.option("--percent", type=click.FloatRange(0, 100, min_open=True), default=None,
              help="Share of requests mirrored (default: serving.deployment.shadow_percent).")
def shadow_start(loaded: LoadedConfig, version: int, percent: float | None) -> None:
    """Start mirroring traffic to VERSION."""
    from mlops_kit.runtime.deploy import set_shadow

    _endpoint_or_fail(lambda: set_shadow(loaded, version, percent))
    console.print(f"shadowing version {version}")


@shadow.command("stop")
@config_options
def shadow_stop(loaded: LoadedConfig) -> None:
    """Stop mirroring."""
    from mlops_kit.runtime.deploy import set_shadow

    set_shadow(loaded, None)
    console.print("shadow stopped")


@shadow.command("report")
@config_options
def shadow_report(loaded: LoadedConfig) -> None:
    """Agreement and latency of the shadow versus production."""
    from mlops_kit.runtime.deploy import endpoint_dir, endpoint_store
    from mlops_kit.serving.shadow import shadow_report as report

    since = endpoint_store(loaded).read().shadow_started
    r = report(endpoint_dir(loaded) / "shadow", loaded.config.model.task, since=since)
    console.print_json(data=r.to_dict())


@main.command()
@config_options
@click.option("--input", "source", required=True, type=click.Path(dir_okay=False),
              help="CSV (header optional), JSON Lines or Parquet of source rows.")
@click.option("--output", "dest", required=True, type=click.Path(),
              help="Output file, or a folder for <input name>.out (as Batch Transform).")
@click.option("--version", "version", type=int, default=None,
              help="Registry version (default: production).")
@click.option("--model-dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Use this model folder instead of a registry version.")
@click.option("--chunk-rows", type=click.IntRange(1, 10_000_000), default=10_000,
              show_default=True, help="Rows per chunk (bounds memory).")
@click.option("--accept", type=click.Choice(["text/csv", "application/json"]),
              default="text/csv", show_default=True, help="Output format, one line per row.")
def batch(loaded: LoadedConfig, source: str, dest: str, version: int | None,
          model_dir: str | None, chunk_rows: int, accept: str) -> None:
    """Batch inference with the serving handler, streamed in chunks."""
    from pathlib import Path

    from mlops_kit.registry import RegistryError
    from mlops_kit.runtime.serving import fetch_version
    from mlops_kit.serving.batch import BatchError, transform
    from mlops_kit.serving.handler import model_fn

    try:
        folder = Path(model_dir) if model_dir else fetch_version(loaded, version)[0]
        model = model_fn(folder, threads=loaded.config.model.threads)
        result = transform(model, Path(source), dest, chunk_rows=chunk_rows,
                           accept=accept)
    except RegistryError as exc:
        fail("registry error", exc)
    except BatchError as exc:
        fail("batch error", exc, 2)
    console.print(f"{result.rows} rows -> {result.output} in {result.seconds:.2f}s "
                  f"({result.rows_per_second:,.0f} rows/s)", soft_wrap=True)


@main.group()
def registry() -> None:
    """List, approve, reject and repair model versions."""


@registry.command("list")
@config_options
@json_option
def registry_list(loaded: LoadedConfig, as_json: bool) -> None:
    """Every version of the config's model; a version whose files fail their digest is
    marked corrupt and never shown as production."""
    listing = project_of(loaded).registry.listing()
    if as_json:
        print_json(listing.to_dict())
        return
    metric = listing.metric
    table = Table("version", "status", metric, "data version", "git", "created", "production")
    for e in listing.versions:
        v = e.version
        table.add_row(str(v.version), f"{v.status} (corrupt: {e.corrupt})" if e.corrupt
                      else v.status, f"{v.metrics.get(metric, float('nan')):.4f}",
                      str(v.lineage.get("data_version") or "")[:12],
                      str((v.lineage.get("git") or {}).get("commit") or "")[:10], v.created,
                      ("corrupt" if e.corrupt else "*") if e.production else "")
    show(table)
    for e in listing.versions:
        if e.corrupt:
            err.print(f"[bold red]corrupt[/]: version {e.version.version}: "
                      f"{escape(str(e.corrupt_detail))}; it cannot be loaded or deployed: "
                      f"restore the file, or reject it (mlops-kit registry reject "
                      f"{e.version.version})", soft_wrap=True)
    for warning in listing.warnings:
        err.print(f"[yellow]warning[/]: {escape(warning)}", soft_wrap=True)


@registry.command()
@config_options
def repair(loaded: LoadedConfig) -> None:
    """Rebuild the local registry's index (registry.json) from its version folders."""
    from mlops_kit.registry import open_registry
    from mlops_kit.registry.local import LocalRegistry

    reg = open_registry(loaded)
    if not isinstance(reg, LocalRegistry):
        fail("usage error", f"the {loaded.config.registry.backend} registry keeps its own "
             "index: there is nothing to repair", 2)
    report = reg.repair(loaded.config.model.name)
    if report.index_problem:
        console.print(f"{report.index} {escape(report.index_problem)}: rebuilt", soft_wrap=True)
    console.print(f"{report.index}: {len(report.versions)} version(s) "
                  f"({', '.join(map(str, report.versions)) or 'none'})", soft_wrap=True)
    for n in report.restored:
        console.print(f"  version {n}: version.json restored from the index")
    for n in report.digested:
        console.print(f"  version {n}: no digest was recorded; recorded its files as they are")
    for problem in report.problems:
        err.print(f"[bold red]not repaired[/]: {escape(problem)}", soft_wrap=True)
    if report.problems:
        sys.exit(1)


def _set_status(loaded: LoadedConfig, version: int, status: str) -> None:
    from mlops_kit.registry import RegistryError

    registry = project_of(loaded).registry
    try:
        v = (registry.approve if status == "Approved" else registry.reject)(version)
    except RegistryError as exc:
        fail("registry error", exc)
    console.print(f"{v.model} version {v.version}: {v.status}")


@registry.command()
@config_options
@click.argument("version", type=int)
def approve(loaded: LoadedConfig, version: int) -> None:
    """Approve a version (the newest approved version is production)."""
    _set_status(loaded, version, "Approved")


@registry.command()
@config_options
@click.argument("version", type=int)
def reject(loaded: LoadedConfig, version: int) -> None:
    """Reject a version."""
    _set_status(loaded, version, "Rejected")


@main.command()
@config_options
@click.option("--input", "input_path", default=None, type=click.Path(),
              help="Source rows: a CSV or Parquet file (or Parquet folder); may hold the target.")
@click.option("--captured", is_flag=True,
              help="Use the requests the endpoint captured instead of --input.")
@click.option("--since-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="With --captured: only requests of the last N minutes.")
@click.option("--version", type=int, default=None,
              help="Registry version whose baseline to use (default: production).")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Folder for drift.json and plots (default <state>/monitoring/<time>).")
@json_option
def monitor(loaded: LoadedConfig, input_path: str | None, captured: bool,
            since_minutes: float | None, version: int | None, output: str | None,
            as_json: bool) -> None:
    """Drift of source rows against a model's baseline. Exit 3 on drift, 2 on bad input."""
    from mlops_kit.monitoring.monitor import MonitorError, MonitorInputError
    from mlops_kit.registry import RegistryError

    if captured == bool(input_path):
        fail("usage error", "give --input PATH or --captured (one of them)", 2)
    try:
        result = project_of(loaded).monitor(input_path, captured=captured,
                                            since_minutes=since_minutes, version=version,
                                            output=output)
    except MonitorInputError as exc:
        fail("input error", exc, 2)
    except (RegistryError, MonitorError) as exc:
        fail("monitor error", exc)
    if as_json:
        print_json(result.to_dict())
        sys.exit(3 if result.report.verdict == "drift" else 0)
    report = result.report
    table = Table("feature", "kind", "PSI", "KS", "KS p", "missing", "violations", "drift")
    for row in report.features:
        table.add_row(row.name, row.kind, _num(row.psi), _num(row.ks_statistic),
                      _num(row.ks_pvalue, ".2g"),
                      f"{row.missing_baseline:.1%} -> {row.missing_current:.1%}",
                      ", ".join(f"{k} {v}" for k, v in row.violations.items() if v),
                      f"[red]{', '.join(row.reasons)}[/]" if row.drifted else
                      "[yellow]insufficient data[/]" if row.insufficient else "")
    show(table)
    q = report.quality
    if q is not None:
        console.print(f"quality: {q.metric} {q.value:.4f} on {q.rows} labelled rows "
                      f"(registered {q.baseline:.4f}, change {q.change:+.4f})"
                      + (" [red]degraded[/]" if q.degraded else ""))
    drifted = report.drifted_features
    few = report.insufficient_features
    verdict = (f"[red]drift[/]: {len(drifted)} of {len(report.features)} features "
               f"({', '.join(drifted)})" if drifted else
               f"[yellow]insufficient data[/] for {', '.join(few)} (fewer than "
               f"monitoring.min_rows = {loaded.config.monitoring.min_rows} values)" if few else
               "[green]no feature drift[/]")
    console.print(f"{result.model} version {result.version}, {report.rows} rows: {verdict}; "
                  f"{result.published} metrics published; report in {result.output}",
                  soft_wrap=True)
    if report.verdict == "drift":
        sys.exit(3)


@main.command("plan-scaling")
@config_options
@click.option("--traffic", required=True, metavar="FILE|week",
              help="CSV of requests per minute, or `week` for the built-in profile.")
@click.option("--peak-rpm", type=click.FloatRange(min=0, min_open=True), default=None,
              help="With `week`: the weekday peak (default: max_instances / 2 instances' worth).")
@click.option("--seed", type=int, default=7, show_default=True, help="With `week`.")
@click.option("--measure", is_flag=True,
              help="Measure one instance's capacity against the real server first.")
@click.option("--measure-seconds", type=click.FloatRange(0.2, 60), default=3.0,
              show_default=True, help="Seconds per step of the --measure ramp.")
@click.option("--model-dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="With --measure: this model folder (default: production).")
@click.option("--write", is_flag=True,
              help="Write serving.scaling (and capacity.instance_rps) into the config file.")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Folder for the report (default <state>/capacity/<time>).")
def plan_scaling(loaded: LoadedConfig, traffic: str, peak_rpm: float | None, seed: int,
                 measure: bool, measure_seconds: float, model_dir: str | None, write: bool,
                 output: str | None) -> None:
    """Plan step scaling from measured capacity and a traffic trace; compare it with target
    tracking, fixed capacity at peak and the oracle (exit 2 on bad input)."""
    import datetime as dt
    from pathlib import Path

    from mlops_kit.capacity import TraceError, load_trace, week_profile
    from mlops_kit.capacity.plan import cloud_from, compare, scaling_doc, to_yaml
    from mlops_kit.capacity.report import write_report
    from mlops_kit.capacity.simulate import PlanError

    serving = loaded.config.serving
    measured: dict[str, Any] | None = None
    try:
        rps = None
        if measure:
            from mlops_kit.runtime.capacity import measure_capacity

            console.print("measuring one server's capacity on loopback ...")
            rps, measured = _endpoint_or_fail(lambda: measure_capacity(
                loaded, Path(model_dir) if model_dir else None, measure_seconds))
            console.print(f"{measured['best_rps']:,.0f} requests/s with {measured['workers']} "
                          f"worker(s) within p99 {serving.latency_p99_ms} ms -> {rps:,.0f}/s "
                          f"for {serving.instance_type} ({measured['vcpus']} vCPUs)")
        cloud = cloud_from(serving, rps)
        trace = (week_profile(peak_rpm or cloud.capacity_rpm * serving.max_instances / 2, seed)
                 if traffic == "week" else load_trace(Path(traffic)))
        comp = compare(trace, serving, cloud)
    except (TraceError, PlanError) as exc:
        fail("input error", exc, 2)
    text = to_yaml(scaling_doc(comp.scaling, rps))
    folder = Path(output) if output else (loaded.state_dir / "capacity" /
                                          dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S"))
    report = write_report(comp, folder, text, measured)
    _print_plan(comp)
    click.echo(text, nl=False)
    if write:
        _write_scaling(loaded, scaling_doc(comp.scaling, rps))
    console.print(f"report: {report}", soft_wrap=True)


def _print_plan(comp: Any) -> None:
    from mlops_kit.capacity.report import table_rows

    rows = table_rows(comp)
    table = Table("policy", "inst-hours", "cost", "overload min", "req over obj", "actions",
                  "peak inst", "x oracle", title=f"{comp.trace.name}, {comp.trace.minutes:,} min")
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int | float) else str(v) for v in row.values()))
    console.print(table)
    step, tt = comp.row(comp.plan.run.name), comp.row("target tracking")
    if not comp.plan.feasible:
        console.print(f"[bold red]no step policy found within the overload budget[/]: the "
                      f"least overloaded one has {step.overload_minutes} overloaded minutes")
    floor = comp.row("oracle").instance_hours
    console.print(f"planned step policy: {step.instance_hours / floor:.3f} x the oracle's "
                  f"instance-hours, {step.cost / tt.cost:.3f} x target tracking's cost")
    held = comp.plan.held_out
    if held is not None:
        console.print(f"with each day's floors fitted on the other days: "
                      f"{held.instance_hours / floor:.3f} x the oracle, "
                      f"{held.overload_minutes} overloaded minutes")
    if comp.plan.noise_overloads:
        console.print(f"on the trace with its minute-to-minute noise redrawn "
                      f"{len(comp.plan.noise_overloads)} times: "
                      f"{list(comp.plan.noise_overloads)} overloaded minutes")
    console.print(comp.plan.note, soft_wrap=True)


def _write_scaling(loaded: LoadedConfig, doc: dict[str, Any]) -> None:
    from mlops_kit.capacity.simulate import PlanError
    from mlops_kit.capacity.write import update_config

    try:
        update_config(loaded.path, doc, validate=load_config)
    except (PlanError, ConfigError) as exc:
        fail("write error", exc, 2)
    console.print(f"[green]wrote[/] serving.{' and serving.'.join(doc)} to {loaded.path}")


def _num(value: float | None, spec: str = ".3f") -> str:
    return "" if value is None else format(value, spec)


@main.command()
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--from", "from_data", type=click.Path(exists=True), default=None,
              help="Infer mlops.yaml from this CSV or Parquet file (or folder of them).")
@click.option("--target", default=None, help="With --from: the column to predict.")
@click.option("--project", default=None, help="Project name (default: the folder's name).")
@click.option("--package", default=None, help="Python package name (default: from the project).")
@click.option("--cloud", "clouds", multiple=True, type=click.Choice(["aws", "azure", "gcp"]),
              help="A cloud to deploy to; repeat for several (default: aws).")
@click.option("--aws-account", default=None, help="AWS account id (12 digits).")
@click.option("--aws-region", default=None, help="AWS region (default: eu-west-1).")
@click.option("--azure-subscription", default=None, help="Azure subscription id.")
@click.option("--azure-location", default=None, help="Azure location (default: westeurope).")
@click.option("--gcp-project", default=None, help="Google Cloud project id.")
@click.option("--gcp-region", default=None, help="Google Cloud region (default: europe-west1).")
@click.option("--ci", type=click.Choice(["github", "gitlab", "codepipeline", "none"]),
              default=None, help="The CI system to write files for (default: github).")
@click.option("--defaults", is_flag=True,
              help="Ask nothing: unanswered questions take their defaults or placeholders.")
@click.option("--force", is_flag=True, help="Write into a folder that is not empty.")
@click.option("--update", "update", is_flag=True,
              help="DEST is a project init wrote: re-apply this kit's template to it (files "
              "you changed are kept, the template's version goes beside as .new and the exit "
              "code is 1; mlops.yaml is never rewritten; takes no answer flags).")
def init(dest: str, from_data: str | None, target: str | None, defaults: bool, force: bool,
         update: bool, **answers: Any) -> None:
    """Start a project in DEST: mlops.yaml (the churn example, or inferred with --from and
    --target), its tests, Dockerfile and the deploy files of each chosen cloud. Asks on a
    terminal; scripts pass flags and --defaults. With --update, bring a project to this kit
    version's template (files you changed are kept; the new version goes beside as .new)."""
    from mlops_kit.project.scaffold import render

    if update:
        flags = {"clouds": "cloud"}
        named = [f"--{flags.get(k, k).replace('_', '-')}" for k, v in answers.items() if v] + [
            f for f, v in (("--from", from_data), ("--target", target), ("--force", force)) if v]
        if named:
            fail("init error", f"--update takes no answers ({', '.join(named)}): it re-applies "
                 "the ones .copier-answers.yml records; to change one, edit it there", 2)
        _init_update(dest)
        return
    if not defaults and not sys.stdin.isatty():
        fail("init error", "stdin is not a terminal, so init cannot ask: pass the answers as "
             "flags with --defaults (unanswered questions take their defaults)", 2)
    given = {k: (list(v) if k == "clouds" else v) for k, v in answers.items() if v}
    folder = render(dest, given, from_data=from_data, target=target, defaults=defaults,
                    force=force)
    console.print(f"[green]wrote[/] {folder}; next:", soft_wrap=True)
    for line in (f"cd {dest}", "pip install -e '.[test]'", "mlops-kit validate",
                 "mlops-kit run --train-only", "pytest"):
        console.print(f"  {escape(line)}", soft_wrap=True)
    if "placeholder" in (folder / "mlops.yaml").read_text(encoding="utf-8"):
        console.print("[yellow]note[/]: mlops.yaml holds placeholder cloud ids; README.md says "
                      "which to replace before deploying", soft_wrap=True)


def _init_update(dest: str) -> None:
    from mlops_kit import __version__
    from mlops_kit.project.scaffold import update_project

    done = update_project(dest)
    for label, paths in (("updated", done.updated), ("added", done.added),
                         ("removed", done.removed),
                         ("kept (you deleted it)", done.kept_deleted),
                         ("kept (you changed it; the template dropped it)", done.kept_changed)):
        for path in paths:
            console.print(f"{label}: {escape(path)}", soft_wrap=True)
    for path, beside in done.conflicts.items():
        console.print(f"[yellow]conflict[/]: {escape(path)}: you and the template both changed "
                      f"it; yours is kept, the template's is {escape(beside)}: merge it and "
                      "delete that file", soft_wrap=True)
    for path in done.pending:
        console.print(f"[yellow]pending[/]: {escape(path)} of an earlier update: merge it and "
                      "delete it", soft_wrap=True)
    changed = done.updated or done.added or done.removed or done.conflicts
    console.print(f"{dest}: {'updated to' if changed else 'already at'} mlops-kit "
                  f"{__version__}'s template", soft_wrap=True)
    if done.conflicts:
        raise SystemExit(1)


@main.group()
def ci() -> None:
    """The project's CI on git push (GitHub Actions, GitLab CI), generated from its config."""


@ci.command("render")
@config_options
@click.option("--system", type=click.Choice(SYSTEMS),
              required=True, help="codepipeline is the CDK app's (mlops.yaml cicd:): no file.")
@click.option("--out", "out", type=click.Path(file_okay=False), default=".", show_default=True,
              help="The project folder the files go in.")
def ci_render(loaded: LoadedConfig, system: str, out: str) -> None:
    """Write the CI files of `--system` for this config (run it again after a config change)."""
    from pathlib import Path

    from mlops_kit.project.ci import render

    files = render(loaded, system)
    if not files:
        console.print(f"{system}: no CI file to write"
                      + (" (the CDK app's delivery pipeline, mlops.yaml `cicd:`)"
                         if system == "codepipeline" else ""))
    for relative, text in files.items():
        path = Path(out) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        console.print(f"wrote {path}", soft_wrap=True)


if __name__ == "__main__":
    main()
