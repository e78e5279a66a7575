"""The state store: what must survive between runs of a stateless scheduler.

One JSON document per environment, read at the start of a run (by the
controller and by each xdist worker) and written once at the end, by the
controller. Backed by a file (the default, under the results dir) or by
Redis when the config names a ``redis://`` URL.

Document layout (``synthetic.state/v1``)::

    {"schema": "synthetic.state/v1",
     "samples": {"<check key>": {"<name>": {"value": 12.0, "at": 1732406400.0}}}}
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from synthetic.errors import ConfigError, MeasurementError, StateError
from synthetic.files import read_json_file, write_json_file
from synthetic.redis_document import RedisDocument

STATE_SCHEMA = "synthetic.state/v1"


class StateStore(Protocol):
    description: str

    def load(self) -> dict[str, Any]: ...

    def save(self, document: Mapping[str, Any]) -> None: ...


def empty_state() -> dict[str, Any]:
    return {"schema": STATE_SCHEMA, "samples": {}}


class FileStateStore:
    """A JSON file written atomically (temp file, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)

    def load(self) -> dict[str, Any]:
        return read_json_file(self.path, what="state", check=_checked, empty=empty_state)

    def save(self, document: Mapping[str, Any]) -> None:
        write_json_file(self.path, document, what="state")


class RedisStateStore:
    """One Redis string per environment, ``synthetic:state:<environment>``."""

    def __init__(self, url: str, environment: str, *, description: str) -> None:
        self.description = description
        self._document = RedisDocument(
            url,
            f"synthetic:state:{environment}",
            description=description,
            what="state",
            empty=empty_state,
            check=_checked,
        )
        self.key = self._document.key

    def load(self) -> dict[str, Any]:
        return self._document.read()

    def save(self, document: Mapping[str, Any]) -> None:
        self._document.write(document)

    def close(self) -> None:
        self._document.close()


def _checked(document: Any, where: str) -> dict[str, Any]:
    if not isinstance(document, dict) or document.get("schema") != STATE_SCHEMA:
        raise StateError(f"{where}: not a {STATE_SCHEMA} document")
    if not isinstance(document.setdefault("samples", {}), dict):
        raise StateError(f"{where}: 'samples' is not an object")
    return document


def open_store(
    spec: str | None, *, environment: str, results_dir: Path, describe: str | None = None
) -> StateStore:
    """The store named by ``spec``: a ``redis://`` URL, a file path, or the default file."""
    if spec is None:
        return FileStateStore(results_dir / f"state-{environment}.json")
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisStateStore(spec, environment, description=describe or "redis state store")
    if "://" in spec:
        raise ConfigError(
            f"state: unsupported store '{spec.split('://')[0]}://' (use a path or redis://)"
        )
    return FileStateStore(Path(spec))


@dataclass(frozen=True)
class Sample:
    value: float
    at: float


class Samples:
    """Previous samples of one check, and the new ones it records this run.

    Rate metrics (failed requests since the previous run, evictions per
    minute) need the last run's counter. A check reads ``previous`` and calls
    ``record``; the controller writes what was recorded once, at the end.
    """

    def __init__(self, previous: Mapping[str, Any], *, now: float | None = None) -> None:
        self._previous = previous
        self.recorded: dict[str, dict[str, float]] = {}
        self._now = now

    def previous(self, name: str) -> Sample | None:
        """The sample of the previous run; None when there is none, or when it is
        not a finite number (a state written before such values were refused)."""
        entry = self._previous.get(name)
        if not isinstance(entry, dict):
            return None
        try:
            sample = Sample(float(entry["value"]), float(entry["at"]))
        except (KeyError, TypeError, ValueError):
            return None
        return sample if math.isfinite(sample.value) and math.isfinite(sample.at) else None

    def record(self, name: str, value: float) -> None:
        """Keep ``value`` for the next run; a `MeasurementError` naming the sample
        when it is not a finite number (it would poison the next run's baseline)."""
        number = float(value)
        if not math.isfinite(number):
            raise MeasurementError(f"{name} is {number}: not a number, not kept for the next run")
        at = self._now if self._now is not None else time.time()
        self.recorded[name] = {"value": number, "at": at}

    def increase(self, name: str, counter: float) -> float | None:
        """How much a monotonic counter grew since the previous run.

        A counter that went down was reset (a restart): its whole value is the
        increase, as Prometheus' ``increase()`` treats resets. ``None`` on the
        first run, when there is nothing to compare with, or when the previous
        value was one no counter has (negative). A counter that is negative or
        not finite is a `MeasurementError` naming it, and is not kept.
        """
        if not math.isfinite(counter) or counter < 0:
            raise MeasurementError(
                f"counter {name} is {counter:g}: a counter is a finite number >= 0 "
                "(not kept as the next run's baseline)"
            )
        before = self.previous(name)
        self.record(name, counter)
        if before is None or before.value < 0:
            return None
        return counter if counter < before.value else counter - before.value

    def rate(self, name: str, counter: float, *, per_seconds: float = 60.0) -> float | None:
        """The counter's increase per ``per_seconds`` since the previous run."""
        before = self.previous(name)
        increase = self.increase(name, counter)
        if before is None or increase is None:
            return None
        elapsed = self.recorded[name]["at"] - before.at
        if elapsed <= 0:
            return None
        return increase / elapsed * per_seconds


def merge_samples(document: dict[str, Any], key: str, recorded: Mapping[str, Any]) -> None:
    """Put one check's samples of this run in the state document.

    What a check recorded this run replaces what it had: samples of things
    that are gone (a statement no longer in the top list) do not pile up
    forever. A check that recorded nothing (skipped, failed) keeps its old ones.
    """
    if recorded:
        document.setdefault("samples", {})[key] = dict(recorded)
