"""Write planned sections into the config file in place: only the `serving.scaling` block
(and `serving.capacity.instance_rps`) changes; every other line, comments included, stays.
Comments inside a replaced block are lost."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mlops_kit.capacity.simulate import PlanError


def _child(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _block_end(lines: list[str], value: yaml.Node) -> int:
    """The line after a block value's last line (trailing blank and comment lines kept)."""
    end = value.end_mark.line if value.end_mark.column == 0 else value.end_mark.line + 1
    while end > value.start_mark.line + 1 and lines[end - 1].strip()[:1] in ("", "#"):
        end -= 1
    return end


def _dump(key: str, data: Any, indent: int) -> list[str]:
    text = yaml.safe_dump({key: data}, sort_keys=False, default_flow_style=None)
    return [" " * indent + line for line in text.splitlines(keepends=True)]


def _set(text: str, key: str, data: Any) -> str:
    """`text` with `serving.<key>` replaced by `data` (added at the end of `serving`)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    root = yaml.compose(text)
    serving = _child(root, "serving") if root is not None else None
    if serving is None or not isinstance(serving[1], yaml.MappingNode) or serving[1].flow_style:
        raise PlanError("the config has no block-style `serving:` mapping to write into; add "
                        "`serving:` or paste the printed YAML yourself")
    found = _child(serving[1], key)
    if found is None:
        first = serving[1].value[0][0] if serving[1].value else None
        indent = first.start_mark.column if first is not None else 2
        at = _block_end(lines, serving[1])
        return "".join(lines[:at] + _dump(key, data, indent) + lines[at:])
    k, v = found
    at, end = k.start_mark.line, _block_end(lines, v)
    return "".join(lines[:at] + _dump(key, data, k.start_mark.column) + lines[end:])


def update_config(path: Path, sections: dict[str, Any],
                  validate: Callable[[Path], object]) -> None:
    """Put `sections` (`scaling`, and `capacity` fields merged into any there) under
    `serving` of the config at `path`; `validate` loads the result from a temp file beside
    it (raising on error) before it atomically replaces the original."""
    text = path.read_text(encoding="utf-8")
    current = (yaml.safe_load(text) or {}).get("serving") or {}
    for key, data in sections.items():
        if key == "capacity":
            data = {**(current.get("capacity") or {}), **data}
        text = _set(text, key, data)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        validate(Path(tmp))
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)
