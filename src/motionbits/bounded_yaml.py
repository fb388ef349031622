"""Reading a YAML file anyone may have written: bounded in size, depth and alias expansion, strict about keys.

A config holds about a hundred values. A file that is nothing like one is refused with one line
before it can hang the command or exhaust the stack: over 1 MB, nested over 32 levels (PyYAML
composes recursively: a few thousand `[` end in RecursionError), or over 100,000 values once its
aliases are expanded (a "billion laughs" file is a few lines whose anchors and aliases expand to
billions of values; PyYAML shares them, but anything that walks or prints the value hangs).
Mapping keys must be strings and appear once (YAML lets a second `lr:` silently win over the
first), and no string may hold a NUL character (no path or name can).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_VALUES = 100_000
SHOWN_CHARS = 80

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class RefusedYaml(yaml.YAMLError):
    """Valid YAML, or not far enough to tell, that no config can be: `line` is 1-based, or None."""

    def __init__(self, message: str, mark: Any = None):
        super().__init__(message)
        self.message = message
        self.line = mark.line + 1 if mark is not None else None


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """`text` cut to `limit` characters, so that an error line never carries megabytes."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise RefusedYaml(f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Node:
        node = super().compose_document()
        _count_values(node, {})
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *base` merges a mapping in; its own keys were checked
                continue
            if not (isinstance(key_node, ScalarNode) and key_node.tag == _STR_TAG):
                problem = (f"key {shorten(repr(key_node.value))} is not a string (quote it)"
                           if isinstance(key_node, ScalarNode) else f"a {key_node.id} as a key (keys are names)")
                raise RefusedYaml(problem, key_node.start_mark)
            if key_node.value in seen:
                raise RefusedYaml(f"key {shorten(repr(key_node.value))} appears twice (also on line "
                                  f"{seen[key_node.value]})", key_node.start_mark)
            seen[key_node.value] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_scalar(self, node: ScalarNode) -> Any:
        value = super().construct_scalar(node)
        if isinstance(value, str) and "\x00" in value:
            raise RefusedYaml(f"value {shorten(repr(value))} holds a NUL character", node.start_mark)
        return value


def _count_values(node: Node, memo: dict[int, int | None]) -> int:
    """Values under `node` with every alias expanded (shared nodes counted at each use, once
    computed); refuses a node that contains itself and a total over MAX_VALUES. Depth is
    bounded by compose_node, so the recursion is too."""
    key = id(node)
    if key in memo:
        if memo[key] is None:
            raise RefusedYaml("an alias refers to a value that contains it", node.start_mark)
        return memo[key]
    memo[key] = None
    if isinstance(node, SequenceNode):
        count = 1 + sum(_count_values(child, memo) for child in node.value)
    elif isinstance(node, MappingNode):
        count = 1 + sum(_count_values(k, memo) + _count_values(v, memo) for k, v in node.value)
    else:
        count = 1
    if count > MAX_VALUES:
        raise RefusedYaml(f"more than {MAX_VALUES:,} values once its aliases are expanded", node.start_mark)
    memo[key] = count
    return count


def load_bounded_yaml(path: Path) -> Any:
    """The file's YAML value. Raises RefusedYaml (see the module docstring), yaml.YAMLError
    (not valid YAML), OSError and UnicodeDecodeError."""
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise RefusedYaml(f"larger than {MAX_BYTES // (1 << 20)} MB, not a config")
    loader = _BoundedLoader(data.decode("utf-8"))
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
