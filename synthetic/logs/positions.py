"""Where each log file was read up to, and reading only what is new since.

A position is the file's identity (device, inode), the offset after the last
complete line read, and a fingerprint of its first bytes. The next read:

- same file, grown: from the offset;
- same inode but shorter (copy-truncate), or its first bytes changed (replaced
  in place): from the start;
- another inode (renamed away and a new file created): the rest of the old
  file, found by its inode next to the new one (``combined.log.1``), then the
  new file from the start.

A last line without its newline is not consumed: it is read again, whole,
once the writer has finished it. A line longer than `MAX_LINE` bytes is
skipped and counted; nothing waits on the writer.

A file read from its start (a first run, no state, a new file) that is
larger than `SEEK_MIN_BYTES` is not read from byte 0: a binary search on its
lines' times finds the first line of the window (less a margin, for writers
slightly out of order), so a first run over days of logs reads about the
window, not the days.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthetic.errors import LogFileError

HEAD_BYTES = 256
CHUNK_BYTES = 3 * 1024 * 1024  # peak RSS ~140 MB on 1 GB (4 MB: ~150)
MAX_LINE = 1024 * 1024
SEEK_MIN_BYTES = 16 * 1024 * 1024  # smaller files are read whole: cheap, and exact stats
PROBE_BYTES = 64 * 1024  # read at each step of the search for a line with a time


@dataclass(frozen=True)
class Position:
    dev: int
    ino: int
    offset: int
    head: str  # blake2b of the first head_len bytes
    head_len: int

    def to_json(self) -> dict[str, Any]:
        return {
            "dev": self.dev,
            "ino": self.ino,
            "offset": self.offset,
            "head": self.head,
            "head_len": self.head_len,
        }

    @classmethod
    def from_json(cls, data: Any) -> Position | None:
        """A position from the state; ``None`` (read from the start) when malformed."""
        try:
            return cls(
                dev=int(data["dev"]),
                ino=int(data["ino"]),
                offset=int(data["offset"]),
                head=str(data["head"]),
                head_len=int(data["head_len"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Seek:
    """Where a file read from its start may begin: the first line at or after
    ``since_ms``, found with ``line_time`` (a line's epoch ms, None if it has none)."""

    since_ms: int
    line_time: Callable[[bytes], int | None]


@dataclass
class ReadStats:
    """What one file's read did: bytes read, why it started where it did."""

    bytes_read: int = 0
    bytes_before_window: int = 0  # not read: before the window (a start found by `Seek`)
    lines_too_long: int = 0
    started: str = "new"  # new | continued | truncated | replaced | rotated
    notes: list[str] = field(default_factory=list)


def _fingerprint(fd: int, length: int) -> str:
    head = os.pread(fd, length, 0)
    return hashlib.blake2b(head, digest_size=16).hexdigest()


def _rotated_away(path: Path, previous: Position) -> Path | None:
    """The file that was ``path`` (same device, inode and first bytes), renamed in its
    directory; an inode reused by another file is not taken for it."""
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return None
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (previous.dev, previous.ino) and entry.is_file():
            return Path(entry.path) if _same_head(Path(entry.path), previous) else None
    return None


def _same_head(path: Path, previous: Position) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return _fingerprint(fd, previous.head_len) == previous.head
    finally:
        os.close(fd)


class LogReader:
    """Reads one file's new complete lines in chunks, and where it got to."""

    def __init__(self, path: Path, previous: Position | None, seek: Seek | None = None) -> None:
        self.path = path
        self.previous = previous
        self.seek = seek
        self.stats = ReadStats()
        self.position: Position | None = previous

    def chunks(self) -> Iterator[bytes]:
        """The new complete lines, a chunk (about `CHUNK_BYTES`, whole lines) at a time."""
        try:
            # Non-blocking: a FIFO named by mistake must not hang the run.
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise LogFileError(f"{self.path}: log file not found", target=str(self.path)) from None
        except OSError as exc:
            raise LogFileError(
                f"{self.path}: cannot open log file: {exc.strerror}", target=str(self.path)
            ) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise LogFileError(f"{self.path}: not a regular file", target=str(self.path))
            size = st.st_size  # what is appended while reading waits for the next run
            start = self._start(fd, st.st_dev, st.st_ino, size)
            if start == 0 and self.stats.started == "rotated":
                yield from self._rest_of_rotated()
            if self.seek is not None and size - start > SEEK_MIN_BYTES:
                # A first read, or a backlog: start at the window, not before it.
                found = _window_start(fd, size, self.seek, low=start)
                self.stats.bytes_before_window = found - start
                start = found
            end = start
            for chunk, after in self._read(fd, start, size):
                end = after
                yield chunk
            head_len = min(HEAD_BYTES, max(end, 0))
            self.position = Position(
                dev=st.st_dev,
                ino=st.st_ino,
                offset=end,
                head=_fingerprint(fd, head_len),
                head_len=head_len,
            )
        except OSError as exc:  # EIO and the like, mid-read
            raise LogFileError(
                f"{self.path}: cannot read log file: {exc.strerror}", target=str(self.path)
            ) from None
        finally:
            os.close(fd)

    def _start(self, fd: int, dev: int, ino: int, size: int) -> int:
        previous = self.previous
        if previous is None:
            self.stats.started = "new"
            return 0
        same_head = size >= previous.offset and _fingerprint(fd, previous.head_len) == previous.head
        if (dev, ino) != (previous.dev, previous.ino):
            if same_head:  # moved, copied over itself, restored, remounted: the same log
                self.stats.started = "continued"
                return previous.offset
            self.stats.started = "rotated"
            return 0
        if size < previous.offset:
            self.stats.started = "truncated"
            return 0
        if not same_head:
            self.stats.started = "replaced"
            return 0
        self.stats.started = "continued"
        return previous.offset

    def _rest_of_rotated(self) -> Iterator[bytes]:
        """Lines appended to the old file after the last run, before it was rotated."""
        previous = self.previous
        assert previous is not None
        old = _rotated_away(self.path, previous)
        if old is None:
            self.stats.notes.append(f"{self.path}: rotated; the old file is gone")
            return
        try:
            fd = os.open(old, os.O_RDONLY)
        except OSError:
            return
        try:
            size = os.fstat(fd).st_size
            if size >= previous.offset:
                self.stats.notes.append(f"{self.path}: rotated; read the rest of {old.name}")
                for chunk, _ in self._read(fd, previous.offset, size, final=True):
                    yield chunk
        finally:
            os.close(fd)

    def _read(
        self, fd: int, start: int, end: int, *, final: bool = False
    ) -> Iterator[tuple[bytes, int]]:
        """Chunks of whole lines from ``start`` to ``end``, each with the offset after it.

        The bytes after the last newline are left for the next run, unless
        ``final`` (a rotated file: nobody writes to it any more).
        """
        offset = start
        pending = b""
        while offset < end:
            data = os.pread(fd, min(CHUNK_BYTES, end - offset), offset)
            if not data:
                break
            offset += len(data)
            self.stats.bytes_read += len(data)
            data = pending + data if pending else data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                pending = data
                if len(pending) > MAX_LINE:  # no newline in sight: skip the monster
                    self.stats.lines_too_long += 1
                    pending = b""
                    offset = self._skip_line(fd, offset, end)
                    yield b"", offset
                continue
            chunk, pending = data[:cut], data[cut:]
            del data  # not held while the caller works on the chunk
            yield chunk, offset - len(pending)
        if final and pending:
            yield pending + b"\n", offset

    def _skip_line(self, fd: int, offset: int, end: int) -> int:
        """The offset after the newline that ends an over-long line (or ``end``)."""
        while offset < end:
            data = os.pread(fd, min(CHUNK_BYTES, end - offset), offset)
            if not data:
                break
            self.stats.bytes_read += len(data)
            newline = data.find(b"\n")
            if newline >= 0:
                return offset + newline + 1
            offset += len(data)
        return offset


def _window_start(fd: int, size: int, seek: Seek, *, low: int = 0) -> int:
    """The offset of a line start at or before the first line at ``seek.since_ms``.

    A binary search on the times of lines: each step reads `PROBE_BYTES` at
    the middle and takes the first whole line with a time. Where no time is
    found the search stops and reads from the last offset known to be early
    enough: never later than the window, at worst from the start.
    """
    high = size  # a line starting at `low` (a line start) or before it is early enough
    while high - low > PROBE_BYTES:
        middle = (low + high) // 2
        found = _first_time_after(fd, middle, size, seek)
        if found is None:
            break
        line_start, moment = found
        if moment < seek.since_ms:
            low = line_start
        else:
            high = middle
    return low


def _first_time_after(fd: int, offset: int, size: int, seek: Seek) -> tuple[int, int] | None:
    """(start, time) of the first whole line after ``offset`` that has a time."""
    data = os.pread(fd, min(PROBE_BYTES, size - offset), offset)
    newline = data.find(b"\n")
    while newline >= 0:
        start = newline + 1
        newline = data.find(b"\n", start)
        if newline < 0:
            return None
        moment = seek.line_time(data[start:newline])
        if moment is not None:
            return offset + start, moment
    return None
