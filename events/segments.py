"""The on-disk log's files and how one is read: the rules every reader of a log directory shares.

Both `events.log.EventLog` (which holds the directory's lock) and the lock-free
`events.log_reader.SegmentReader` (what `roster replay` and the other offline verbs use on a
directory a running node may hold) read segments through the functions here, so there is
one rule for what a segment file is, what a good line is and what a bad one means.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, BinaryIO, Generator

from events import codec
from events.record import Record

SEGMENT_NAME_DIGITS = 20  # zero-padded first seq: names sort in seq order, fits any int64 seq
SEGMENT_SUFFIX = ".jsonl"
LOCK_FILE_NAME = "LOCK"
READ_BUFFER_BYTES = 1024 * 1024  # buffered reads when scanning: a few syscalls per MiB of log

SEGMENT_RE = re.compile(r"^(\d{%d})%s$" % (SEGMENT_NAME_DIGITS, re.escape(SEGMENT_SUFFIX)))


class LogError(Exception):
    """Base of every error the log raises on purpose."""


class CorruptLogError(LogError):
    """The log is damaged somewhere other than a torn tail; `seq` is the first record that is bad."""

    def __init__(self, seq: int, reason: str, *, segment: Path | None = None, offset: int | None = None) -> None:
        where = f" ({segment} at byte {offset})" if segment is not None else ""
        super().__init__(f"log corrupt at seq {seq}: {reason}{where}")
        self.seq = seq
        self.reason = reason
        self.segment = segment
        self.offset = offset


def segment_name(first_seq: int) -> str:
    return f"{first_seq:0{SEGMENT_NAME_DIGITS}d}{SEGMENT_SUFFIX}"


def segment_files(path: Path) -> list[tuple[int, Path]]:
    """(first seq, path) of every segment file in a log directory, in seq order."""
    found = []
    for entry in os.scandir(path):
        m = SEGMENT_RE.match(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1)), Path(entry.path)))
    return sorted(found)


def parse_line(line: bytes) -> dict[str, Any]:
    """The envelope of one whole disk line (newline included); CodecError when torn or corrupt."""
    return codec.parse_line(line)


def env_or_none(line: bytes) -> dict[str, Any] | None:
    """The envelope of one whole, CRC-valid line, or None (a probe that passes over damage)."""
    try:
        return codec.parse_line(line)
    except codec.CodecError:
        return None


def decode_records(f: BinaryIO, path: Path, seq: int, last: int, offset: int | None = None
                   ) -> Generator[Record, None, int]:
    """Records `seq`..`last` from `f`, positioned at the line of `seq`; returns the next seq.

    The hot loop of every read of the log: CRC check, one parse per line, gapless seqs. A line
    that is not a good record is a CorruptLogError naming the seq (and the byte offset, when
    the caller gives where `f` started). Stops early, without error, where the file ends: the
    caller knows whether more segments follow.
    """
    if seq > last:
        return seq
    decode = codec.decode_line
    for line in f:
        try:
            rec = decode(line)
        except codec.CodecError as exc:
            raise CorruptLogError(seq, str(exc), segment=path, offset=offset) from None
        if rec.seq != seq:
            raise CorruptLogError(seq, f"found seq {rec.seq} where seq {seq} belongs", segment=path, offset=offset)
        yield rec
        seq += 1
        if offset is not None:
            offset += len(line)
        if seq > last:
            break
    return seq
