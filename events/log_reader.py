"""A read-only view of a log directory that takes no lock: what the offline tools read with.

`roster replay`, `events`, `diff` and `timeline` read a directory a running node may hold
(DESIGN §5), so they cannot open it as an `EventLog` (that takes the lock and scans and
repairs the whole log). This reader finds the head from the last bytes of the last segment,
finds a seq by bisecting byte offsets, and reads records with the same line rules as the
log itself (`events.segments`). The head is fixed when the reader is made (records a running
node appends later are not seen); a torn last line is passed over, damage anywhere else
raises CorruptLogError when it is read.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from events import codec
from events.record import Record
from events.segments import (
    LOCK_FILE_NAME,
    READ_BUFFER_BYTES,
    SEGMENT_SUFFIX,
    CorruptLogError,
    decode_records,
    env_or_none,
    segment_files,
)

BISECT_LINEAR_BYTES = 64 * 1024  # below this span, finding a seq in a segment reads lines in order
TAIL_PROBE_BYTES = 64 * 1024  # the head is found in this many bytes at the end of the last segment


class NotALogError(ValueError):
    """The directory holds no Roster log."""


def is_log_dir(path: str | os.PathLike[str]) -> bool:
    """A directory with log segments, or an empty log (only the lock file an EventLog leaves)."""
    p = Path(path)
    return p.is_dir() and (bool(segment_files(p)) or (p / LOCK_FILE_NAME).exists())


def _last_env(path: Path) -> dict[str, Any] | None:
    """The last whole, CRC-valid record of a segment (a torn last line is passed over)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        start = max(0, size - TAIL_PROBE_BYTES)
        f.seek(start)
        lines = f.read().split(b"\n")
        complete = lines[:-1] if start == 0 else lines[1:-1]  # the first piece may be a partial line
        for line in reversed(complete):
            env = env_or_none(line + b"\n")
            if env is not None:
                return env
        if start == 0:
            return None
        f.seek(0)  # nothing whole in the probe (huge lines, or damage): scan the segment
        last = None
        for line in f:
            last = env_or_none(line) or last
        return last


def _offset_of(f: BinaryIO, size: int, first: int, seq: int) -> int:
    """Byte offset of the line holding `seq` in a segment whose first line is `first`.

    Bisects on byte offsets (reading one line per probe), then counts lines: records are one
    per line and gapless, so a rebuild from a snapshot near the head reads little of the file.
    """
    lo, lo_seq, hi = 0, first, size  # the wanted line starts in [lo, hi]
    while hi - lo > BISECT_LINEAR_BYTES:
        mid = (lo + hi) // 2
        f.seek(mid)
        f.readline()  # the rest of the line `mid` falls in
        start = f.tell()
        if start >= hi:
            hi = mid
            continue
        env = env_or_none(f.readline())
        if env is None:
            break  # damage: count lines from lo; the decoder will name the bad seq
        if env["seq"] <= seq:
            lo, lo_seq = start, env["seq"]
        else:
            hi = mid
    f.seek(lo)
    offset = lo
    for _ in range(seq - lo_seq):
        offset += len(f.readline())
    return offset


class SegmentReader:
    """A read-only, lock-free view of the log in one directory (see the module doc)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"no such directory: {self.path}")
        if not is_log_dir(self.path) and is_log_dir(self.path / "log"):
            self.path = self.path / "log"  # a data dir's quorum/ or nodes/<id>/: its log is log/
        if not is_log_dir(self.path):
            raise NotALogError(f"{self.path} is not a Roster log directory (no *{SEGMENT_SUFFIX} segments)")
        self.segments = segment_files(self.path)
        self._firsts = [first for first, _ in self.segments]
        self.head_seq, self.head_hash = self._find_head()

    def _find_head(self) -> tuple[int, str]:
        for _, path in reversed(self.segments):  # a last segment holding only a torn line: look earlier
            env = _last_env(path)
            if env is not None:
                return env["seq"], env["hash"]
        return 0, codec.GENESIS_HASH

    def _segment_index(self, seq: int) -> int:
        return bisect_right(self._firsts, seq) - 1

    def env_at(self, seq: int) -> dict[str, Any]:
        """The envelope of record `seq` (1..head) as written, without decoding the event."""
        first, path = self.segments[self._segment_index(seq)]
        with open(path, "rb") as f:
            offset = _offset_of(f, path.stat().st_size, first, seq)
            f.seek(offset)
            env = env_or_none(f.readline())
        if env is None or env["seq"] != seq:
            raise CorruptLogError(seq, "record unreadable or out of place", segment=path, offset=offset)
        return env

    def hash_at(self, seq: int) -> str | None:
        """The chain hash at `seq`, None beyond the head (what snapshots are checked against)."""
        if seq == 0:
            return codec.GENESIS_HASH
        if not 0 < seq <= self.head_seq:
            return None
        return self.head_hash if seq == self.head_seq else self.env_at(seq)["hash"]

    def iter_records(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[Record]:
        """Decoded records from_seq..to_seq (clipped to 1..head), streamed."""
        last = self.head_seq if to_seq is None else min(to_seq, self.head_seq)
        seq = max(from_seq, 1)
        for first, path in self.segments[max(self._segment_index(seq), 0):]:
            if seq > last:
                return
            if first > seq:
                raise CorruptLogError(seq, f"segment {path.name} starts at seq {first}, expected {seq}", segment=path)
            with open(path, "rb", buffering=READ_BUFFER_BYTES) as f:
                offset = _offset_of(f, path.stat().st_size, first, seq) if seq > first else 0
                f.seek(offset)
                seq = yield from decode_records(f, path, seq, last, offset)
        if seq <= last:
            raise CorruptLogError(seq, "the log ends before its head record")
