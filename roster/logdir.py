"""Replay from a log directory: the file-reading half of the replay tools.

Reads segment files without taking the log's lock (so `roster replay` works on a directory a
running node holds), finds seqs and times by bisection, and rebuilds projections from the
newest valid snapshot plus the tail. The pure folds, diff and timeline are in
`projections.replay`; this module is the shell around them (DESIGN §5: no core touches files).
"""

from __future__ import annotations

import os
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Callable, Generator, Iterator

from events import codec, snapshot_store
from events.log import LOCK_FILE_NAME, SEGMENT_NAME_DIGITS, SEGMENT_SUFFIX, CorruptLogError
from events.record import Record
from projections import config_db, membership, resources
from projections.replay import parse_time
from projections.state import ClusterState

READ_BUFFER_BYTES = 1024 * 1024  # buffered segment reads: a few syscalls per MiB
BISECT_LINEAR_BYTES = 64 * 1024  # below this span, finding a seq in a segment reads lines in order
TAIL_PROBE_BYTES = 64 * 1024  # the head is found in this many bytes at the end of the last segment
PROGRESS_EVERY_RECORDS = 10_000  # how often a long replay reports progress

Progress = Callable[[int, int], None]  # (records applied, records to apply)

class NotALogError(ValueError):
    """The directory holds no Roster log."""


def _segment_files(path: Path) -> list[tuple[int, Path]]:
    found = []
    for entry in os.scandir(path):
        stem = entry.name[: -len(SEGMENT_SUFFIX)]
        if entry.name.endswith(SEGMENT_SUFFIX) and len(stem) == SEGMENT_NAME_DIGITS and stem.isdigit():
            found.append((int(stem), Path(entry.path)))
    return sorted(found)


def is_log_dir(path: str | os.PathLike[str]) -> bool:
    """A directory with log segments, or an empty log (only the lock file an EventLog leaves)."""
    p = Path(path)
    return p.is_dir() and (bool(_segment_files(p)) or (p / LOCK_FILE_NAME).exists())


def _env(line: bytes) -> dict[str, Any] | None:
    """The envelope of one whole disk line, or None when it is torn or corrupt."""
    if not line.endswith(b"\n"):
        return None
    try:
        env = codec.loads(codec.unframe(line[:-1]))
    except codec.CodecError:
        return None
    return env if isinstance(env, dict) and type(env.get("seq")) is int else None


def _last_env(path: Path) -> dict[str, Any] | None:
    """The last whole, CRC-valid record of a segment (a torn last line is passed over)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        start = max(0, size - TAIL_PROBE_BYTES)
        f.seek(start)
        lines = f.read().split(b"\n")
        complete = lines[:-1] if start == 0 else lines[1:-1]  # the first piece may be a partial line
        for line in reversed(complete):
            env = _env(line + b"\n")
            if env is not None:
                return env
        if start == 0:
            return None
        f.seek(0)  # nothing whole in the probe (huge lines, or damage): scan the segment
        last = None
        for line in f:
            last = _env(line) or last
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
        env = _env(f.readline())
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



class LogReader:
    """A read-only view of a log directory that takes no lock.

    The head is fixed when the reader is made (records a running node appends later are not
    seen); a torn last line is ignored, damage anywhere else raises CorruptLogError.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"no such directory: {self.path}")
        if not is_log_dir(self.path):
            raise NotALogError(f"{self.path} is not a Roster log directory (no *{SEGMENT_SUFFIX} segments)")
        self.segments = _segment_files(self.path)
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
            env = _env(f.readline())
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
                if seq > first:
                    f.seek(_offset_of(f, path.stat().st_size, first, seq))
                seq = yield from _decode_lines(f, path, seq, last)
        if seq <= last:
            raise CorruptLogError(seq, "the log ends before its head record")

    def seq_at_time(self, t: datetime) -> int:
        """The last seq whose ts is at or before `t` (0 when the log starts after `t`).

        Bisects on seq: the Quorum stamps ts as it assigns seqs, so ts does not go backwards;
        the walk forward after the bisection absorbs a local step back (a clock adjusted).
        """
        def at_or_before(seq: int) -> bool:
            return parse_time(self.env_at(seq)["ts"]) <= t

        lo, hi = 0, self.head_seq
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if at_or_before(mid):
                lo = mid
            else:
                hi = mid - 1
        while lo < self.head_seq and at_or_before(lo + 1):
            lo += 1
        return lo


def _decode_lines(f: BinaryIO, path: Path, seq: int, last: int) -> Generator[Record, None, int]:
    """The hot loop of every replay: CRC check, decode, gapless seqs. Returns the next seq."""
    decode, unframe = codec.decode, codec.unframe
    for line in f:
        try:
            rec = decode(unframe(line[:-1]))
        except codec.CodecError as exc:
            raise CorruptLogError(seq, str(exc), segment=path) from None
        if rec.seq != seq:
            raise CorruptLogError(seq, f"found seq {rec.seq} where seq {seq} belongs", segment=path)
        yield rec
        seq += 1
        if seq > last:
            break
    return seq


# --- rebuilding -----------------------------------------------------------------------------


@dataclass(slots=True)
class ReplayReport:
    seq: int  # the state's seq
    snapshot_seq: int | None  # the snapshot the rebuild started from, None: from the beginning
    applied: int  # records folded on top of it
    warnings: list[str] = field(default_factory=list)  # snapshots skipped, and why


def check_seq(reader: LogReader, seq: int) -> int:
    if not 0 <= seq <= reader.head_seq:
        raise ValueError(f"seq {seq} is beyond the head of the log (head seq {reader.head_seq})"
                         if seq > 0 else f"seq {seq} is not a seq (seqs start at 1; 0 is the empty log)")
    return seq


def advance(reader: LogReader, state: ClusterState, to_seq: int, progress: Progress | None = None) -> ClusterState:
    """A new state: `state` with records state.seq+1..to_seq folded in (`state` is not changed)."""
    out = state.copy()
    _apply_range(reader, out, state.seq + 1, check_seq(reader, to_seq), progress)
    return out


def _apply_range(reader: LogReader, state: ClusterState, first: int, last: int, progress: Progress | None) -> None:
    cfg_apply, view_apply, res_apply = config_db.apply_in_place, membership.apply_in_place, resources.apply_in_place
    cfg, view, res = state.config, state.membership, state.resources
    records = reader.iter_records(first, last)
    if progress is None:
        for r in records:
            cfg_apply(cfg, r)
            view_apply(view, r)
            res_apply(res, r)
        return
    total, done = max(last - first + 1, 0), 0
    for r in records:
        cfg_apply(cfg, r)
        view_apply(view, r)
        res_apply(res, r)
        done += 1
        if done % PROGRESS_EVERY_RECORDS == 0:
            progress(done, total)
    progress(total, total)


def rebuild_from(
    reader: LogReader,
    *,
    to_seq: int | None = None,
    use_snapshots: bool = True,
    snapshot_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> tuple[ClusterState, ReplayReport]:
    """The state at `to_seq` (default: the head): newest valid snapshot at or before it + the tail."""
    target = reader.head_seq if to_seq is None else check_seq(reader, to_seq)
    snap: ClusterState | None = None
    warnings: list[str] = []
    if use_snapshots:
        where = reader.path if snapshot_dir is None else snapshot_dir
        snap, warnings = snapshot_store.load_newest_valid(where, reader.hash_at, max_seq=target)
    state = snap if snap is not None else ClusterState()
    start = state.seq
    _apply_range(reader, state, start + 1, target, progress)
    return state, ReplayReport(target, start if snap is not None else None, target - start, warnings)


def rebuild(logdir: str | os.PathLike[str], *, to_seq: int | None = None, use_snapshots: bool = True) -> ClusterState:
    """The projections of the log in `logdir` at `to_seq` (default: its head)."""
    return rebuild_from(LogReader(logdir), to_seq=to_seq, use_snapshots=use_snapshots)[0]


def state_at_seq(logdir: str | os.PathLike[str], seq: int, *, use_snapshots: bool = True) -> ClusterState:
    return rebuild(logdir, to_seq=seq, use_snapshots=use_snapshots)


def state_at_time(logdir: str | os.PathLike[str], ts_iso: str, *, use_snapshots: bool = True) -> ClusterState:
    """The state after the last record with ts <= `ts_iso` (the empty state if there is none)."""
    reader = LogReader(logdir)
    seq = reader.seq_at_time(parse_time(ts_iso))
    return rebuild_from(reader, to_seq=seq, use_snapshots=use_snapshots)[0]
