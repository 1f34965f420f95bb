"""Read `mlops.yaml` into a ProjectConfig; every error names the file, line, field and fix."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

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
        config = ProjectConfig.model_validate(raw, context={"root": self.root})
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
    node, raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {raw!r}")
    data = _apply_sets(_apply_env(raw, env, path), sets or [], path)
    try:
        config = ProjectConfig.model_validate(data, context={"root": path.parent})
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


MAX_BYTES = 1 << 20  # a config file of more than 1 MiB is refused unread
MAX_DEPTH = 50  # nested mappings and lists
MAX_ALIASES = 200  # `*name` references
MAX_NODES = 100_000  # values after aliases are expanded (a "billion laughs" bomb has 10^9)


def read_yaml(path: Path) -> tuple[yaml.Node | None, Any]:
    """A YAML file's node tree (for line numbers) and its data, within the loader's bounds:
    at most MAX_BYTES of UTF-8, MAX_DEPTH levels, MAX_ALIASES aliases expanding to at most
    MAX_NODES values, and no key twice in a mapping. ConfigError names the file and line."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ConfigError(f"{path}: the file is {size:,} bytes; a config is at most "
                          f"{MAX_BYTES:,} bytes (1 MiB): is this the right file?")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: byte {exc.start:,} is 0x{data[exc.start]:02x}"
                          "; save the file as UTF-8") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """YAML text's node tree and data within the bounds of `read_yaml`; `source` names it."""
    loader = _BoundedLoader(text, source)
    try:
        node = loader.get_single_node()
        _check_expansion(node, source)
        return node, (loader.construct_document(node) if node is not None else None)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting, many aliases and duplicate keys as it composes."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source, self.depth, self.aliases = source, 0, 0

    def _refuse(self, mark: Any, problem: str) -> NoReturn:
        raise ConfigError(f"{self.source}:{mark.line + 1}: {problem}")

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                self._refuse(event.start_mark, f"more than {MAX_ALIASES} aliases (*name); "
                             "write the values out or use fewer anchors")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self._refuse(event.start_mark, f"nested more than {MAX_DEPTH} levels deep; "
                         "a config needs a handful")
        try:
            return super().compose_node(parent, index)  # type: ignore[return-value]
        finally:
            self.depth -= 1

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        node: yaml.MappingNode = super().compose_mapping_node(anchor)
        seen: dict[Any, int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            name = (key.tag, key.value)
            if name in seen:
                self._refuse(key.start_mark, f"duplicate key {key.value!r} (first at line "
                             f"{seen[name]}); keep one of them")
            seen[name] = key.start_mark.line + 1
        return node


def _check_expansion(root: yaml.Node | None, source: str) -> None:
    """Refuse a tree whose aliases expand to more than MAX_NODES values, or refer to
    themselves, before anything walks the expanded data."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            if sizes[key] < 0:
                raise ConfigError(f"{source}:{node.start_mark.line + 1}: an alias refers to "
                                  "the value that contains it; a config cannot be recursive")
            return sizes[key]
        sizes[key] = -1
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        if total > MAX_NODES:
            raise ConfigError(f"{source}: aliases expand to more than {MAX_NODES:,} values "
                              "(a YAML alias bomb?); write the config without nested aliases")
        sizes[key] = total
        return total

    if root is not None:
        size(root)


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
        value = parse_yaml(text, f"{path}: --set {item!r}")[1]
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
