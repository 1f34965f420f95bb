"""The config loader is bounded: hostile or broken YAML gets one line naming the file and the
reason (exit 2), fast, never a traceback, a hang or gigabytes of memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_kit.config import ConfigError, load_config
from tests.conftest import ROOT, write_config

BOMB = "\n".join(["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]) + "\n"


def _with(tmp_path: Path, extra: str) -> Path:
    """The example config with `extra` text appended (top-level keys)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_config(tmp_path)
    path.write_text(path.read_text() + extra)
    return path


def cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (config file, what its error must say)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("project: x\n" + BOMB)
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("project: caf\u00e9\n".encode("latin-1"))
    deep = tmp_path / "deep.yaml"
    deep.write_text("project: x\nnested: " + "[" * 5000 + "]" * 5000 + "\n")
    big = tmp_path / "big.yaml"
    big.write_text("project: x\n" + "# padding padding padding padding padding\n" * 30_000)
    dup = _with(tmp_path / "dup", "project: again\n")
    first = next(i for i, line in enumerate(dup.read_text().splitlines(), 1)
                 if line.startswith("project:"))
    last = len(dup.read_text().splitlines())
    recursive = tmp_path / "recursive.yaml"
    recursive.write_text("project: x\nloop: &l [*l]\n")
    return {
        "bomb": (bomb, "aliases expand to more than 100,000 values"),
        "latin1": (latin, "not UTF-8 text: byte 12 is 0xe9"),
        "deep": (deep, "nested more than 50 levels deep"),
        "big": (big, "a config is at most 1,048,576 bytes"),
        "duplicate": (dup, f"{dup}:{last}: duplicate key 'project' (first at line {first})"),
        "recursive": (recursive, "an alias refers to the value that contains it"),
    }


NAMES = ["bomb", "latin1", "deep", "big", "duplicate", "recursive"]


@pytest.mark.parametrize("name", NAMES)
def test_load_config_refuses_with_the_file_and_the_reason(tmp_path: Path, name: str) -> None:
    path, reason = cases(tmp_path)[name]
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and reason in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_cli_validate_exits_2_in_seconds(tmp_path: Path, name: str) -> None:
    path, reason = cases(tmp_path)[name]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    # the hard guard: before the bounds the bomb ran past 60 s and 3 GB
    res = subprocess.run([sys.executable, "-m", "mlops_kit.cli", "validate", "--config",
                          str(path)], capture_output=True, text=True, timeout=30, env=env,
                         check=False)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert reason in " ".join(res.stderr.split()) and "config error" in res.stderr


def test_a_bad_pipeline_file_gets_the_same_loader(tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("name: p\nname: q\nsteps: []\n")
    path = write_config(tmp_path, {"pipeline": str(pipeline)})
    from mlops_kit.pipeline import load_pipeline

    with pytest.raises(ConfigError, match=rf"{pipeline}:2: duplicate key 'name'"):
        load_pipeline(load_config(path))


def test_anchors_and_merge_keys_within_bounds_still_load(tmp_path: Path) -> None:
    path = _with(tmp_path, "x-base: &base {a: 1}\nx-use: {<<: *base, b: 2}\n")
    text = path.read_text()
    assert "x-base" in text
    with pytest.raises(ConfigError, match="x-base: got"):  # the anchors load; the key is unknown
        load_config(path)


def test_a_bad_set_value_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    with pytest.raises(ConfigError, match=r"--set 'data.source.rows=\[1'.*not valid YAML"):
        load_config(path, sets=["data.source.rows=[1"])
