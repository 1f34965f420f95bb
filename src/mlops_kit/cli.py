"""The `mlops-kit` command line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlops_kit.config import ConfigError, LoadedConfig, load_config

console = Console(stderr=False, highlight=False)
err = Console(stderr=True, highlight=False)


def fail(kind: str, exc: BaseException | str, code: int = 1) -> NoReturn:
    """Print `kind: message` to stderr (the message verbatim, never read as markup) and exit."""
    err.print(f"[bold red]{kind}[/]: {escape(str(exc))}", soft_wrap=True)
    sys.exit(code)


def config_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--config`, `--env` and `--set`, loaded into a LoadedConfig passed as `loaded`."""

    @click.option("--config", "config_path", default="mlops.yaml", show_default=True,
                  type=click.Path(dir_okay=False), help="The project config.")
    @click.option("--env", default=None, help="Apply this environment's overrides.")
    @click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
                  help="Override one field, e.g. --set data.source.rows=100000 (YAML value).")
    @functools.wraps(fn)
    def wrapper(config_path: str, env: str | None, sets: tuple[str, ...], **kw: Any) -> Any:
        try:
            loaded = load_config(config_path, env=env, sets=list(sets))
        except ConfigError as exc:
            fail("config error", exc, 2)
        return fn(loaded=loaded, **kw)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlops-kit")
def main() -> None:
    """mlops-kit: the ML lifecycle from one config, locally and on AWS, Azure or GCP."""


@main.command()
@config_options
def validate(loaded: LoadedConfig) -> None:
    """Check a config alone (exit 2 with the field and the fix if it is wrong)."""
    cfg = loaded.config
    envs = ", ".join(f"{k} ({v.cloud} {v.region})" for k, v in cfg.environments.items()) or "none"
    console.print(f"[green]ok[/] {loaded.path}: project {cfg.project}, model {cfg.model.name} "
                  f"({cfg.model.framework}, {cfg.model.task}), "
                  f"{len(cfg.table.columns)} columns, {len(cfg.features.declared)} features, "
                  f"environments: {envs}")


@main.command()
@config_options
@click.option("--target", type=click.Choice(["local", "moto"]), default="local",
              show_default=True, help="local files, or the AWS adapters against moto.")
@click.option("--no-cache", is_flag=True, help="Recompute every step.")
@click.option("--ingest-date", default=None, help="Ingestion date partition (default today).")
def run(loaded: LoadedConfig, target: str, no_cache: bool, ingest_date: str | None) -> None:
    """Run ingest -> validate -> features -> train -> evaluate -> register."""
    from mlops_kit.runtime.progress import StepProgress
    from mlops_kit.runtime.runner import RunFailed, run_pipeline

    params = {"ingest_date": ingest_date} if ingest_date else {}
    progress = StepProgress(console)
    try:
        result = run_pipeline(loaded, target, use_cache=not no_cache, params=params,
                              listener=progress)
    except ConfigError as exc:
        fail("config error", exc, 2)
    except RunFailed as exc:
        progress.summary(exc.result)
        fail("run failed", exc)
    progress.summary(result)


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
        console.print(table)
        console.print(f"{len(frame)} row(s)")


@main.command()
@config_options
@click.option("--version", "version", type=int, default=None,
              help="Registry version to serve (default: production, the newest approved).")
@click.option("--model-dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Serve this model folder instead of a registry version.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: serving.port (8080).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default: serving.workers, else the CPU count).")
@click.option("--no-capture", is_flag=True, help="Do not log requests and responses.")
def serve(loaded: LoadedConfig, version: int | None, model_dir: str | None, host: str,
          port: int | None, workers: int | None, no_capture: bool) -> None:
    """Serve a model over HTTP: GET /ping, POST /invocations (SageMaker's contract)."""
    from pathlib import Path

    from mlops_kit.registry import RegistryError
    from mlops_kit.runtime.serving import fetch_version, serve_settings
    from mlops_kit.serving.app import serve as run_server

    if model_dir and version:
        fail("usage error", "give --version or --model-dir, not both", 2)
    folder, label = (Path(model_dir), "local") if model_dir else (Path(), "")
    if not model_dir:
        try:
            folder, chosen = fetch_version(loaded, version)
        except RegistryError as exc:
            fail("registry error", exc)
        label = str(chosen.version)
    settings = serve_settings(loaded, folder, label, workers=workers, capture=not no_capture)
    port = port or loaded.config.serving.port
    console.print(f"serving {loaded.config.model.name} version {label} from {folder} on "
                  f"http://{host}:{port} with {settings.workers} worker(s); "
                  f"capture: {settings.capture_dir or 'off'}", soft_wrap=True)
    run_server(settings, host=host, port=port)


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
    """List, approve and reject model versions."""


@registry.command("list")
@config_options
def registry_list(loaded: LoadedConfig) -> None:
    """Every version of the config's model."""
    from mlops_kit.registry import open_registry, production

    reg = open_registry(loaded)
    model = loaded.config.model.name
    current = production(reg, model)
    metric = loaded.config.quality_gate.metric
    table = Table("version", "status", metric, "data version", "git", "created", "production")
    for v in reg.versions(model):
        table.add_row(str(v.version), v.status, f"{v.metrics.get(metric, float('nan')):.4f}",
                      str(v.lineage.get("data_version") or "")[:12],
                      str((v.lineage.get("git") or {}).get("commit") or "")[:10], v.created,
                      "*" if current and current.version == v.version else "")
    console.print(table)


def _set_status(loaded: LoadedConfig, version: int, status: str) -> None:
    from mlops_kit.registry import RegistryError, open_registry

    try:
        v = open_registry(loaded).set_status(loaded.config.model.name, version, status)  # type: ignore[arg-type]
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


if __name__ == "__main__":
    main()
