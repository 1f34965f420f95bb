"""Glue between the config, the registry and the server: which model folder, which settings."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from mlops_kit.config import LoadedConfig
from mlops_kit.fileio import temp_sibling
from mlops_kit.registry import ModelVersion, Registry, RegistryError, open_registry, production
from mlops_kit.registry.base import digest_mismatch, download_verified
from mlops_kit.serving.app import ServeSettings

log = logging.getLogger("mlops_kit.registry")


def fetch_version(loaded: LoadedConfig, version: int | None = None) -> tuple[Path, ModelVersion]:
    """The local folder of a registry version (production if None). A cached copy is used
    only if its digest matches; otherwise the version is downloaded again and checked, and
    CorruptVersionError names the file when the registry's copy is bad too."""
    registry = open_registry(loaded)
    model = loaded.config.model.name
    chosen = registry.get(model, version) if version else production(registry, model)
    if chosen is None:
        raise RegistryError(f"{model} has no approved version to serve: run `mlops-kit run`, "
                            "approve one (`mlops-kit registry approve N`) or pass --version")
    dest = loaded.state_dir / "serving" / "models" / model / str(chosen.version)
    if (dest / ".complete").is_file():
        mismatch = digest_mismatch(dest, chosen)
        if mismatch is None:
            return dest, chosen
        log.warning("%s: %s; fetching %s version %s again from the registry",
                    mismatch.where(dest), mismatch.what, model, chosen.version)
    _download(registry, chosen, dest)
    return dest, chosen


def _download(registry: Registry, chosen: ModelVersion, dest: Path) -> None:
    """Download and check `chosen` beside `dest`, then swap it in."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(dest, "stage")  # a dead process's is swept by its pid (recovery)
    tmp.mkdir()
    try:
        download_verified(registry, chosen, tmp)
        (tmp / ".complete").touch()
        shutil.rmtree(dest, ignore_errors=True)
        try:
            tmp.rename(dest)
        except OSError:  # another process put a copy there first: fine if it checks out
            if not (dest / ".complete").is_file() or digest_mismatch(dest, chosen):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def capture_root(loaded: LoadedConfig) -> Path:
    """Where captured requests of the config's model are written."""
    return loaded.state_dir / "capture" / loaded.config.model.name


def serve_settings(loaded: LoadedConfig, model_dir: Path, version: str, *,
                   workers: int | None = None, capture: bool = True,
                   variant: str = "AllTraffic") -> ServeSettings:
    """Server settings from the config's `serving` section (arguments win)."""
    serving = loaded.config.serving
    on = capture and serving.capture.enabled
    return ServeSettings(
        model_dir=str(model_dir), model=loaded.config.model.name, version=version,
        variant=variant, max_payload_mb=serving.max_payload_mb,
        workers=workers or serving.workers or os.cpu_count() or 1,
        capture_dir=str(capture_root(loaded)) if on else None,
        sampling_percent=serving.capture.sampling_percent,
        capture_inputs=serving.capture.inputs,
        **serving.limits.model_dump(),
        capture_retention_days=serving.capture.retention_days,
        capture_max_mb=serving.capture.max_mb,
    )


def endpoint_settings(loaded: LoadedConfig, version: int | None = None, *,
                      workers: int | None = None, capture: bool = True) -> ServeSettings:
    """Settings to serve the config's endpoint; puts `version` (or production) live if the
    endpoint has no version yet or `version` is given."""
    from mlops_kit.runtime.deploy import Deployer, endpoint_dir, endpoint_store

    store = endpoint_store(loaded)
    live = store.read().live
    if live is None or (version is not None and live.version != version):
        cfg = loaded.config.serving.deployment.model_copy(update={"strategy": "all_at_once",
                                                                  "termination_wait_s": 0})
        Deployer(loaded, deployment=cfg).deploy(version)
    state = store.read()
    for variant in [*state.variants, *([state.shadow] if state.shadow else [])]:
        fetch_version(loaded, variant.version)  # check (or fetch again) what workers load
    folder = endpoint_dir(loaded)
    settings = serve_settings(loaded, Path(), "", workers=workers, capture=capture)
    settings.endpoint_state = str(store.path)
    settings.metrics_dir = str(folder / "metrics")
    settings.shadow_dir = str(folder / "shadow")
    return settings
