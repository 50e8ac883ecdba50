"""The recorder's overflow on disk: rows the database could not take while memory was full.

One append-only JSON-lines file per process (`recorder-<pid>.jsonl` in the spill directory),
each line `{"t": table, "r": row}` with datetimes and decimals tagged so they come back as
they went. The recorder reads it back in chunks once the database answers again and its
queue is empty; the offset of the last chunk written is kept beside the file
(`.offset`), so a crash mid-replay repeats at most one chunk. Files left by a process that
died are replayed by the next one to start with the same directory, then removed.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

Entry = tuple[str, dict[str, Any]]


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    raise TypeError(f"cannot spill {type(value).__name__}")


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$dt" in obj:
            return datetime.fromisoformat(obj["$dt"])
        if "$dec" in obj:
            return Decimal(obj["$dec"])
    return obj


class Spill:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / f"recorder-{os.getpid()}.jsonl"
        self._writer: IO[str] | None = None
        self._files: list[Path] = []  # to replay, oldest first; the current one last
        self.written = 0  # rows appended by this process
        self.replayed = 0  # rows read back and handed to the recorder
        self._unread = 0
        if self.path.exists():
            # An earlier process had our pid (a container's pid 1): its rows are leftovers.
            moved = self.path.with_name(f"recorder-{os.getpid()}-{os.urandom(4).hex()}.jsonl")
            self.path.rename(moved)
            offset = self.path.parent / (self.path.name + ".offset")
            if offset.exists():
                offset.rename(moved.parent / (moved.name + ".offset"))

    def adopt_leftovers(self) -> int:
        """Queue files other (dead) processes left here; returns how many rows they hold."""
        if not self.directory.is_dir():
            return 0
        rows = 0
        for path in sorted(self.directory.glob("recorder-*.jsonl")):
            if path == self.path or path in self._files:
                continue
            pid = path.stem.removeprefix("recorder-")
            if pid.isdigit() and _alive(int(pid)):
                continue  # a live process sharing the directory replays its own
            left = _count_lines(path) - _offset(path)[1]
            if left <= 0:  # written back whole before its process died: only remove it
                path.unlink(missing_ok=True)
                (path.parent / (path.name + ".offset")).unlink(missing_ok=True)
                continue
            self._files.append(path)
            rows += left
        self._unread += rows
        return rows

    @property
    def pending(self) -> int:
        """Rows on disk not yet read back."""
        return self._unread

    def append(self, table: str, row: dict[str, Any]) -> None:
        if self._writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._writer = self.path.open("a", encoding="utf-8")
            if self.path not in self._files:
                self._files.append(self.path)
        self._writer.write(json.dumps({"t": table, "r": row}, default=_default) + "\n")
        self.written += 1
        self._unread += 1

    def sync(self) -> None:
        """Push appended rows to the OS (not fsync: a crash of the process loses nothing;
        one of the machine may lose the last seconds)."""
        if self._writer is not None:
            self._writer.flush()

    def read(self, limit: int) -> tuple[list[Entry], tuple[Path, int, int] | None]:
        """Up to `limit` rows from the oldest file, and a mark to `done()` once written."""
        self.sync()
        while self._files:
            path = self._files[0]
            byte, line = _offset(path)
            entries: list[Entry] = []
            with path.open("r", encoding="utf-8") as reader:
                reader.seek(byte)
                while len(entries) < limit:
                    text = reader.readline()
                    if not text.endswith("\n"):
                        break  # the end, or a line cut by a crash: nothing more here
                    item = json.loads(text, object_hook=_hook)
                    entries.append((item["t"], item["r"]))
                end = reader.tell() if entries else byte
            if entries:
                return entries, (path, end, line + len(entries))
            self._finish(path)
        return [], None

    def done(self, mark: tuple[Path, int, int], rows: int) -> None:
        path, byte, line = mark
        (path.parent / (path.name + ".offset")).write_text(f"{byte} {line}")
        self._unread = max(0, self._unread - rows)
        self.replayed += rows
        if not self._unread and path in self._files:
            # Read to its end with nothing appended since: written back whole. Removed now,
            # not at the next read, which may never come (a quiet process).
            self._finish(path)

    def _finish(self, path: Path) -> None:
        """Everything in `path` is written: remove it (and stop appending to it)."""
        if path == self.path and self._writer is not None:
            self._writer.close()
            self._writer = None
        path.unlink(missing_ok=True)
        (path.parent / (path.name + ".offset")).unlink(missing_ok=True)
        self._files.remove(path)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _offset(path: Path) -> tuple[int, int]:
    try:
        byte, line = (path.parent / (path.name + ".offset")).read_text().split()
        return int(byte), int(line)
    except (OSError, ValueError):
        return 0, 0


def _count_lines(path: Path) -> int:
    with path.open("rb") as reader:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: reader.read(1 << 20), b""))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
