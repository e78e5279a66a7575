"""Writing helpers the targets share: names, durations, quoting, YAML and JSON files."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

_WORD = re.compile(r"[A-Za-z0-9]+")


def camel(*parts: str) -> str:
    """``camel("bullmq.waiting", "email")`` is ``BullmqWaitingEmail``: a name that is
    a valid identifier everywhere (alert names, CloudFormation logical ids)."""
    words = [word for part in parts for word in _WORD.findall(part)]
    return "".join(word[:1].upper() + word[1:] for word in words)


def duration(seconds: float) -> str:
    """Seconds as Prometheus and Alertmanager write a duration: 0s, 90s is 1m30s, 2h."""
    whole = round(seconds)
    if whole <= 0:
        return "0s"
    text = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            text += f"{count}{unit}"
    return text


def promql_string(value: str) -> str:
    """A PromQL (and Alertmanager matcher) double-quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_GLOB_SPECIAL = set(r"\.+*?()|[]{}^$")


def glob_regex(pattern: str) -> str:
    """A shell glob (`fnmatch`, as routes and silences match) as an RE2 regex,
    which Alertmanager anchors at both ends."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and (end := pattern.find("]", index + 1)) != -1:
            body = pattern[index:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            index = end + 1
        else:
            out.append("\\" + char if char in _GLOB_SPECIAL else char)
    return "".join(out)


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order given, long strings unfolded."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


class _PlainDumper(_Dumper):
    """No anchors and aliases: a reader sees every value where it applies."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def yaml_file(header: str, notes: list[str], data: Any, *, aliases: bool = False) -> str:
    """A YAML document headed by comments: what generated it, then its notes.

    ``aliases``: an object that appears twice is written once (``&id001``) and
    referred to after, for files that repeat large values (unit tests).
    """
    lines = [f"# {header}"] + [f"# note: {note}" for note in notes]
    dumper = _Dumper if aliases else _PlainDumper
    body = yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=1000)
    return "\n".join(lines) + "\n" + str(body)


def json_file(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
