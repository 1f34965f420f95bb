"""Read `mlops.yaml` into a ProjectConfig; every error names the file, line, field and fix."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mlops_kit.config.model import Environment, ProjectConfig


class ConfigError(Exception):
    """A config that cannot be used; `str()` is the message the user sees."""


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config plus where it came from (paths resolve against `root`)."""

    config: ProjectConfig
    path: Path
    env: str | None
    digest: str

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def state_dir(self) -> Path:
        """Where local state lives (lake, registry, runs): `$MLOPS_STATE_DIR` or `.mlops/`."""
        env = os.environ.get("MLOPS_STATE_DIR")
        return Path(env).expanduser().resolve() if env else self.root / ".mlops"

    @property
    def environment(self) -> Environment | None:
        """The selected environment, if any."""
        return self.config.environments[self.env] if self.env else None

    def with_values(self, values: dict[str, Any]) -> LoadedConfig:
        """A copy with dotted fields replaced (`{"data.source.shift": 1.0}`), re-validated."""
        raw = self.config.model_dump(mode="json", by_alias=True)
        for dotted, value in values.items():
            node = raw
            *parents, last = dotted.split(".")
            for part in parents:
                node = node[part]
            node[last] = value
        config = ProjectConfig.model_validate(raw)
        digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()
        return LoadedConfig(config, self.path, self.env, digest)

    def resolve(self, relative: str) -> Path:
        """A path from the config, made absolute against the config's folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.root / p).resolve()


def load_config(path: str | Path, env: str | None = None,
                sets: list[str] | None = None, model: str | None = None) -> LoadedConfig:
    """Load, overlay the environment's overrides and `sets` (`a.b=value`), validate.

    `model` picks one of the project's models as `config.model` (default: the first).

    Raises ConfigError, whose message names the file, line, field, bad value and what is allowed.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (pass --config PATH)")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {raw!r}")
    data = _apply_sets(_apply_env(raw, env, path), sets or [], path)
    try:
        config = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format(exc, path, node, env)) from None
    if model is not None:
        try:
            config = config.for_model(model)
        except ValueError as exc:
            raise ConfigError(f"{path}: --model: {exc}") from None
        data = {**data, "model": config.model.model_dump(mode="json")}
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return LoadedConfig(config=config, path=path.resolve(), env=env, digest=digest)


def _apply_env(raw: dict[str, Any], env: str | None, path: Path) -> dict[str, Any]:
    if env is None:
        return raw
    envs = raw.get("environments") or {}
    if env not in envs:
        known = ", ".join(sorted(envs)) or "none"
        raise ConfigError(f"{path}: environments.{env}: no such environment; defined: {known}")
    overrides = (envs[env] or {}).get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{path}: environments.{env}.overrides: must be a mapping")
    return deep_merge(raw, overrides)


def _apply_sets(raw: dict[str, Any], sets: list[str], path: Path) -> dict[str, Any]:
    for item in sets:
        dotted, sep, text = item.partition("=")
        if not sep or not dotted:
            raise ConfigError(
                f"{path}: --set {item!r}: use FIELD=VALUE, e.g. data.source.rows=1000")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: --set {item!r}: value is not valid YAML") from exc
        raw = copy.deepcopy(raw)
        node = raw
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{path}: --set {item!r}: {part} is not a mapping")
        node[last] = value
    return raw


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid onto `base`: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _format(exc: ValidationError, path: Path, node: yaml.Node | None, env: str | None) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not _is_union_tag(p)]
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:  # a whole-config rule: its message starts with the field it is about
            named = re.match(r"[a-z_]+(\.[a-z_]+|\[\d+\])*(?=[ :])", msg)
            line = _line_of(node, _parts(named.group())) if named else None
            lines.append(f"{path}:{line or 1}: {msg}{_via(env)}")
            continue
        field = _dotted(loc)
        line = _line_of(node, loc)
        where = f"{path}:{line}" if line else str(path)
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see docs/config.md for the fields)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        value = "" if err["type"] == "missing" else f"got {_short(err.get('input'))}: "
        lines.append(f"{where}: {field}: {value}{msg}{_via(env)}")
    return "\n".join(dict.fromkeys(lines))


def _parts(dotted: str) -> list[str | int]:
    """`features.declared[7]` -> ['features', 'declared', 7]."""
    return [int(p) if p.isdigit() else p for p in re.findall(r"[a-z_]+|\d+", dotted)]


def _via(env: str | None) -> str:
    return f" (after environment '{env}' overrides)" if env else ""


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in {"generator", "csv", "parquet"} or "[" in part)


def _dotted(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out.replace("schema_", "schema")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """1-based line of the deepest YAML node that `loc` reaches."""
    best = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            key = "schema" if part == "schema_" else part
            match = next(((k, v) for k, v in node.value if k.value == key), None)
            if match is None:
                return best
            best, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return best
            node = node.value[part]
            best = node.start_mark.line + 1
        else:
            return best
    return best
