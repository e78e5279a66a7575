"""Files a run writes and reads again, safely: JSON written atomically, read
back checked (a bad file moved aside, never overwritten), and a bounded
exclusive lock. Used by the state, the alert outbox, results.json, the log
positions and the run directory; no knowledge of what the documents hold.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synthetic.errors import StateError


def read_json_file(
    path: Path,
    *,
    what: str,
    check: Callable[[Any, str], dict[str, Any]],
    empty: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """A JSON document from ``path``, checked; ``empty()`` when there is none.

    A file that is not JSON, or that ``check`` refuses, is moved aside (a
    `StateError` says where), never overwritten.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return empty()
    except (OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            problem = f"{path}: {what} is not valid JSON (not UTF-8)"
            raise move_aside(path, problem) from None
        raise StateError(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        return check(json.loads(text), str(path))
    except json.JSONDecodeError as exc:
        problem = f"{path}: {what} is not valid JSON ({exc.msg} at line {exc.lineno})"
    except StateError as exc:
        problem = str(exc)
    raise move_aside(path, problem)


def write_json_file(path: Path, document: Any, *, what: str) -> None:
    """`write_json_atomic`, with a one-line `StateError` on failure."""
    try:
        write_json_atomic(path, document)
    except OSError as exc:
        raise StateError(f"{path}: cannot write {what}: {exc.strerror}") from None


def move_aside(path: Path, problem: str) -> StateError:
    """Keep a bad state file for a post-mortem instead of overwriting it.

    Returns the error to raise, which says where the file went."""
    stamp = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    try:
        path.replace(aside)
    except OSError as move:
        return StateError(
            f"{problem}; could not move it aside ({move.strerror}): running without state"
        )
    return StateError(f"{problem}; moved aside to {aside.name}, starting from empty state")


def flock_within(fd: int, timeout_s: float, *, poll_s: float = 0.01) -> bool:
    """Take an exclusive `flock` on ``fd``, waiting at most ``timeout_s``.

    False when another process still holds it then; any other failure is the
    `OSError`. Bounded, so a process stuck holding a lock cannot hang the next.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def write_json_atomic(path: Path, document: Any, *, indent: int | None = None) -> None:
    """Write JSON so a reader sees the old file or the new one, never a part.

    A temp file in the same directory, fsynced, then renamed over ``path``;
    on any failure the temp file is removed and the old file is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=indent, sort_keys=indent is None, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
