"""A progress bar on stderr, shown only when stderr is a terminal (scripts and CI see nothing)."""

from __future__ import annotations

import sys

BAR_WIDTH_CHARS = 30


class Progress:
    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = max(total, 1), label, 0
        self.enabled = sys.stderr.isatty()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.enabled:
            filled = BAR_WIDTH_CHARS * self.done // self.total
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH_CHARS - filled)}] {self.done}/{self.total} {self.label}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
