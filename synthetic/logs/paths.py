"""Which fields of a log line a shape reads, as a tree of paths: no polars.

`synthetic.logs.parse` turns the tree into the polars schema it reads a file
with; the config's validation (`synthetic.logs.settings`) builds it only to
say, at load, that a field would be both a value and an object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from synthetic.logs.settings import split_path
from synthetic.logs.shapes import LogShape, get_path

# Read as numbers (unless the samples show text for time or level).
_NUMERIC_LEAVES = frozenset(
    {"req_status", "req_duration", "call_status", "call_duration", "time", "level"}
)


@dataclass(frozen=True)
class ShapePaths:
    """Each canonical column's field path, and each leaf read with its kind."""

    sources: dict[str, tuple[str, ...]]  # single-field columns
    messages: tuple[tuple[str, ...], ...]
    correlation: tuple[tuple[str, ...], ...]
    user_agent: tuple[str, ...] | None
    leaves: tuple[tuple[tuple[str, ...], str], ...]  # (path, "number" | "text")
    textual: frozenset[str] = frozenset()  # time, level: read as text
    presence: frozenset[str] = frozenset()  # kind rules that only ask whether a field is there


def shape_paths(shape: LogShape, samples: Iterable[dict[str, Any]] = ()) -> ShapePaths:
    """The paths ``shape`` reads; time and level as text when the ``samples`` show text."""
    single: dict[str, str | None] = {
        "level": shape.level,
        "time": shape.time,
        "timestamp": shape.timestamp,
        "req_status": shape.request_status,
        "req_duration": shape.request_duration,
        "path": shape.request_path,
        "method": shape.request_method,
        "req_when": shape.request_when.field,
        "call_status": shape.call_status,
        "call_duration": shape.call_duration,
        "call_error": shape.call_error,
        "call_when": shape.call_when.field if shape.call_when else None,
        "dep_text": shape.dependency_field,
        "request_id": shape.request_id,
    }
    sources = {column: split_path(path) for column, path in single.items() if path}
    messages = tuple(split_path(p) for p in shape.messages)
    correlation = tuple(split_path(p) for p in shape.correlation)
    user_agent = split_path(shape.user_agent) if shape.user_agent else None
    records = list(samples)
    textual = {
        column
        for column in ("time", "level")
        if column in sources and any(isinstance(get_path(r, sources[column]), str) for r in records)
    }
    # A kind rule without a pattern only asks whether its field is there: it
    # takes the type the field has for another column (statusCode: a number).
    presence = {c for c, rule in (("req_when", shape.request_when), ("call_when", shape.call_when))
                if rule is not None and rule.pattern is None}  # fmt: skip
    leaves = [
        (path, "number" if column in _NUMERIC_LEAVES and column not in textual else "text")
        for column, path in sources.items()
        if column not in presence
    ]
    leaves += [(path, "text") for path in (*messages, *correlation)]
    if user_agent:
        leaves.append((user_agent, "text"))
    return ShapePaths(
        sources,
        messages,
        correlation,
        user_agent,
        tuple(leaves),
        frozenset(textual),
        frozenset(presence),
    )


def path_tree(paths: ShapePaths) -> dict[str, Any]:
    """The leaves as a nested dict (a leaf is its kind); a `ValueError` when a
    path is both a value and an object. A presence-only column takes the kind
    another column gives its field, else text."""
    tree: dict[str, Any] = {}
    for path, kind in paths.leaves:
        _insert(tree, path, kind)
    for column in paths.presence & paths.sources.keys():
        if _leaf(tree, paths.sources[column]) is None:
            _insert(tree, paths.sources[column], "text")
    return tree


def _insert(tree: dict[str, Any], path: tuple[str, ...], kind: str) -> None:
    node = tree
    for depth, key in enumerate(path):
        last = depth == len(path) - 1
        existing = node.get(key)
        if last:
            if isinstance(existing, dict):
                raise ValueError(_overlap(path))
            if existing is None:
                node[key] = kind
            elif existing != kind:  # text holds numbers too
                node[key] = "text"
            return
        if existing is not None and not isinstance(existing, dict):
            raise ValueError(_overlap(path))
        node = node.setdefault(key, {})


def _leaf(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = tree
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _overlap(path: tuple[str, ...]) -> str:
    shown = ".".join(path)
    return f"the log field {shown!r} overlaps another mapped field (a value and an object)"
