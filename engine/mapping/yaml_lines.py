"""YAML loading that remembers line numbers, so mapping errors can say file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

try:  # libyaml's parser: a start reads ~2,300 lines of mappings, 9x faster than with PyYAML's own
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

__all__ = ["LineDict", "LineStr", "line_of", "load_yaml", "plain"]


class LineStr(str):
    """A string scalar and the 1-based line it came from."""

    line: int = 0


class LineDict(dict[Any, Any]):
    """A mapping, its own line, and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class _Loader(_SafeLoader):
    def construct_yaml_str(self, node: Any) -> LineStr:
        text = LineStr(self.construct_scalar(node))
        text.line = node.start_mark.line + 1
        return text

    def construct_yaml_map(self, node: Any) -> Any:
        data = LineDict()
        data.line = node.start_mark.line + 1
        data.key_lines = {}
        yield data
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            data[key] = self.construct_object(value_node, deep=True)
            data.key_lines[key] = key_node.start_mark.line + 1


_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_yaml_str)
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)


def line_of(value: Any, parent: Any = None, key: Any = None) -> int:
    """Best-known line of a value: its own, else its key's in the parent mapping, else 0."""
    line = getattr(value, "line", 0)
    if not line and isinstance(parent, LineDict):
        line = parent.key_lines.get(key, parent.line)
    return int(line)


def plain(value: Any) -> Any:
    """The same data as built-in dicts, lists and strs (for embedding as constants)."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value
