"""Size-capped, rotated log files for a service's stdout/stderr.

`stdout.log` grows to `max_bytes`, then becomes `stdout.log.1` (`.1` becomes `.2`, …) and
a new `stdout.log` starts; at most `files_kept` old files are kept, so a chatty service
uses at most (files_kept + 1) × max_bytes of the node's disk.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_LOG_MAX_BYTES = 1024 * 1024
DEFAULT_LOG_FILES_KEPT = 3


class RotatingFile:
    def __init__(self, path: Path, max_bytes: int = DEFAULT_LOG_MAX_BYTES,
                 files_kept: int = DEFAULT_LOG_FILES_KEPT) -> None:
        if max_bytes <= 0 or files_kept < 0:
            raise ValueError("max_bytes must be > 0 and files_kept >= 0")
        self.path, self.max_bytes, self.files_kept = path, max_bytes, files_kept
        self._f = open(path, "ab")
        self._size = self._f.tell()

    def write(self, data: bytes) -> None:
        while data:
            room = self.max_bytes - self._size
            if room <= 0:
                self._rotate()
                continue
            part, data = data[:room], data[room:]
            self._f.write(part)
            self._size += len(part)
        self._f.flush()  # a reader (or a crash) sees what the service wrote, not a buffer

    def _rotate(self) -> None:
        self._f.close()
        for i in range(self.files_kept - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.files_kept:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._f = open(self.path, "ab")
        self._size = 0

    def close(self) -> None:
        self._f.close()
