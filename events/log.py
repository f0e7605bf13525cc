"""The durable, append-only event log of DESIGN §2: segment files of framed JSON lines.

A log directory holds:

    LOCK                                 flock'd by the one EventLog that has the directory open
    00000000000000000001.jsonl           segments, named by the seq of their first record
    00000000000000000001.jsonl.torn-N    bytes cut from a torn tail at byte offset N (kept)
    aside/<n>/                           a whole history set aside when a replica was replaced

Every line of a segment is one record as `codec.frame` writes it (JSON with a trailing CRC32C
field), so `jq . 0000*.jsonl` reads a log. Segments are only ever appended to; the one write
that is not an append is cutting a torn tail on open, and the cut bytes are saved first.

Appends are durable before they return (write + fsync). Concurrent appenders share fsyncs
(group commit, leader/follower): an appender seals and frames its records and queues the
lines under the lock; if no flush is running it becomes the leader, otherwise it sleeps. The
leader writes everything queued (one write per segment touched) and fsyncs once, with the lock
released so others keep queueing; then it wakes exactly the appenders that flush made durable,
and one more to lead the next flush if lines were queued meanwhile. Seqs are assigned under
the lock, so they stay gapless and in order however appenders interleave. Nothing is deleted,
ever.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from events import codec
from events.record import Draft, Record
from events.segments import (  # re-exported: callers import these from events.log
    LOCK_FILE_NAME,
    READ_BUFFER_BYTES,
    SEGMENT_NAME_DIGITS,
    SEGMENT_SUFFIX,
    CorruptLogError,
    LogError,
    decode_records,
    env_or_none,
    parse_line,
    segment_files,
    segment_name,
)

__all__ = [
    "AppendConflict", "CorruptLogError", "EventLog", "LOCK_FILE_NAME", "LogClosedError", "LogError",
    "LogFailedError", "LogLockedError", "SEGMENT_MAX_BYTES", "SEGMENT_NAME_DIGITS", "SEGMENT_SUFFIX",
    "TruncationReport", "VerifyReport", "repair_log", "segment_name", "verify_log",
]

SEGMENT_MAX_BYTES = 64 * 1024 * 1024  # roll to a new segment past this size; keeps files copyable
LOCK_PID_WIDTH = 10  # characters: any Linux pid (pid_max <= 2**22) fits
ASIDE_DIR_NAME = "aside"
FILE_MODE = 0o644

# A segment or one of its torn-tail side files: what set_aside moves.
_SEGMENT_FAMILY_RE = re.compile(r"^\d{%d}%s(\.torn-\d+(-\d+)?)?$" % (SEGMENT_NAME_DIGITS, re.escape(SEGMENT_SUFFIX)))


class LogLockedError(LogError):
    """Another EventLog (in this process or another) has the directory open."""


class LogClosedError(LogError):
    """The EventLog was closed."""


class LogFailedError(LogError):
    """A write or fsync failed; what reached the disk is unknown, so the log must be reopened."""


class AppendConflict(LogError):
    """The caller's idea of the head (seq or hash) is not the log's; nothing was written."""

    def __init__(self, expected: int, head: int, detail: str | None = None) -> None:
        msg = f"expected head {expected}, log head is {head}"
        super().__init__(f"{msg}: {detail}" if detail else msg)
        self.expected = expected
        self.head = head
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TruncationReport:
    """A torn tail cut on open: `byte_count` bytes from `offset` of `segment`, saved to `saved_to`."""

    segment: Path
    offset: int
    byte_count: int
    reason: str
    saved_to: Path
    next_seq: int  # the seq the cut bytes would have started; the log's head is next_seq - 1


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    head_seq: int  # last good seq
    head_hash: str
    records: int  # good records
    first_bad_seq: int | None
    reason: str | None
    torn_tail: bool  # the only problem is a torn tail that EventLog.open would cut


@dataclass(slots=True, eq=False)
class _Segment:
    first_seq: int
    path: Path
    offsets: array = field(default_factory=lambda: array("Q"))  # byte offset of each durable record
    size: int = 0  # bytes of durable records

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.offsets) - 1


@dataclass(frozen=True, slots=True)
class _Torn:
    segment: Path
    offset: int
    reason: str


# ---------------------------------------------------------------------------------------------
# Scanning: shared by EventLog.open (which then cuts a torn tail) and verify_log (read-only).


def _valid_line_follows(f: BinaryIO) -> bool:
    """True when any later line is a whole, CRC-valid record: the damage is not a torn tail."""
    return any(env_or_none(line) is not None for line in f)


class _Scanner:
    """Walks every segment checking CRC, gapless seqs and the hash chain.

    The state (segments, head) stays valid after a CorruptLogError: it describes the good prefix.
    """

    def __init__(self, path: Path, *, decode: bool) -> None:
        self.path = path
        self.decode = decode  # also validate each record against the current schema (verify)
        self.segments: list[_Segment] = []
        self.head_seq = 0
        self.head_hash = codec.GENESIS_HASH
        self.torn: _Torn | None = None

    def run(self) -> _Scanner:
        files = segment_files(self.path)
        for i, (first, seg_path) in enumerate(files):
            if first != self.head_seq + 1:
                reason = f"segment {seg_path.name} starts at seq {first}, expected {self.head_seq + 1}"
                raise CorruptLogError(self.head_seq + 1, reason, segment=seg_path, offset=0)
            seg = _Segment(first, seg_path)
            self.segments.append(seg)
            self._scan_segment(seg, is_last=i == len(files) - 1)
        return self

    def _scan_segment(self, seg: _Segment, *, is_last: bool) -> None:
        with open(seg.path, "rb", buffering=READ_BUFFER_BYTES) as f:
            for line in f:
                seq = self.head_seq + 1
                try:
                    env = parse_line(line)
                except codec.CodecError as exc:
                    # Only bad bytes with nothing valid after them, at the very end, are a torn write.
                    if is_last and not _valid_line_follows(f):
                        self.torn = _Torn(seg.path, seg.size, str(exc))
                        return
                    raise CorruptLogError(seq, str(exc), segment=seg.path, offset=seg.size) from None
                self._check(env, seq, seg)
                seg.offsets.append(seg.size)
                seg.size += len(line)
                self.head_seq, self.head_hash = seq, env["hash"]

    def _check(self, env: dict[str, Any], seq: int, seg: _Segment) -> None:
        def bad(reason: str) -> CorruptLogError:
            return CorruptLogError(seq, reason, segment=seg.path, offset=seg.size)

        if env["seq"] != seq:
            raise bad(f"seq gap: found seq {env['seq']} where seq {seq} belongs")
        # Chained over the envelope as written (not a decoded Record): an old-version record
        # hashes as it was written, before any upcast.
        if codec.chain_hash(self.head_hash, env) != env["hash"]:
            raise bad(f"hash chain broken: record does not chain to the hash of seq {seq - 1}")
        if self.decode:
            try:
                codec.from_envelope(env)
            except codec.CodecError as exc:
                raise bad(str(exc)) from None


# ---------------------------------------------------------------------------------------------
# Small file helpers.


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written < len(data):  # rare (disk full, signals): finish or raise
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


def _take_lock(path: Path) -> int:
    fd = os.open(path / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise LogLockedError(f"log directory {path} is already open (lock held by pid {holder})") from None
    except BaseException:
        os.close(fd)
        raise
    # Only to name the holder in the error above; fixed width, so no truncate (a journal op) needed.
    os.pwrite(fd, f"{os.getpid():>{LOCK_PID_WIDTH}}\n".encode(), 0)
    return fd


def _release_lock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _free_path(base: Path) -> Path:
    """`base`, or `base-2`, `base-3`...: a side file never overwrites an earlier one."""
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _cut_torn_tail(torn: _Torn, next_seq: int, *, fsync: bool) -> TruncationReport:
    """Save the bytes after the last valid record to a side file, then truncate the segment."""
    with open(torn.segment, "rb") as f:
        f.seek(torn.offset)
        cut = f.read()
    side = _free_path(torn.segment.with_name(f"{torn.segment.name}.torn-{torn.offset}"))
    fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        _write_all(fd, cut)
        if fsync:
            os.fsync(fd)  # the cut bytes are safe before the segment loses them
    finally:
        os.close(fd)
    fd = os.open(torn.segment, os.O_WRONLY)
    try:
        os.ftruncate(fd, torn.offset)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    if fsync:
        _fsync_dir(torn.segment.parent)
    return TruncationReport(torn.segment, torn.offset, len(cut), torn.reason, side, next_seq)


def _prepare_dir(path: Path, *, create: bool, fsync: bool) -> None:
    if path.is_dir():
        return
    if not create:
        raise FileNotFoundError(f"no log directory at {path}")
    path.mkdir(parents=True, exist_ok=True)
    if fsync:
        _fsync_dir(path.parent)


def _iter_spans(spans: list[tuple[Path, int, int, int]]) -> Iterator[Record]:
    """Stream records from (segment, byte offset, first seq, count) spans, one line at a time."""
    for path, offset, seq, count in spans:
        with open(path, "rb", buffering=READ_BUFFER_BYTES) as f:
            f.seek(offset)
            last = seq + count - 1
            missing = yield from decode_records(f, path, seq, last, offset)
            if missing <= last:
                raise CorruptLogError(missing, "the segment ends before this record", segment=path)


# ---------------------------------------------------------------------------------------------


class EventLog:
    """The durable append-only log in one directory. Thread-safe; one instance per directory."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        segment_max_bytes: int = SEGMENT_MAX_BYTES,
        fsync: bool = True,
        create: bool = True,
    ) -> None:
        if segment_max_bytes <= 0:
            raise ValueError(f"segment_max_bytes must be positive, got {segment_max_bytes}")
        self.path = Path(path)
        self.segment_max_bytes = segment_max_bytes
        self._fsync = fsync  # False only for simulations and tests: nothing is durable then
        _prepare_dir(self.path, create=create, fsync=fsync)
        self._lock_fd = _take_lock(self.path)
        try:
            scan = _Scanner(self.path, decode=False).run()
            self.truncated: TruncationReport | None = None
            if scan.torn is not None:
                self.truncated = _cut_torn_tail(scan.torn, scan.head_seq + 1, fsync=fsync)
            self._tail_fd: int | None = None
            if scan.segments:
                self._tail_fd = os.open(scan.segments[-1].path, os.O_WRONLY | os.O_APPEND)
        except BaseException:
            _release_lock(self._lock_fd)
            raise
        self._segments = scan.segments
        self._firsts = [s.first_seq for s in scan.segments]  # for bisect: seq -> segment
        # Durable: on disk and fsynced, what readers see. Head: sealed, maybe still in flight.
        self._durable_seq = self._head_seq = scan.head_seq
        self._durable_hash = self._head_hash = scan.head_hash
        self._mutex = threading.Lock()
        self._pending: list[tuple[int, str, list[bytes]]] = []  # (last seq, its hash, lines), seq order
        self._flushing = False
        self._sleepers: list[tuple[int, threading.Lock]] = []  # (seq awaited, gate), see _sleep
        self._failed: BaseException | None = None
        self._closed = False
        self.fsync_count = 0  # data-file fsyncs; fewer than appends when group commit batches
        self.flush_count = 0  # write batches

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        segment_max_bytes: int = SEGMENT_MAX_BYTES,
        fsync: bool = True,
        create: bool = True,
    ) -> EventLog:
        return cls(path, segment_max_bytes=segment_max_bytes, fsync=fsync, create=create)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventLog({str(self.path)!r}, head_seq={self._durable_seq})"

    def __len__(self) -> int:
        return self._durable_seq

    @property
    def head_seq(self) -> int:
        """The last durable seq; 0 when the log is empty."""
        return self._durable_seq

    @property
    def head_hash(self) -> str:
        """The hash of the last durable record; GENESIS_HASH when the log is empty."""
        return self._durable_hash

    @property
    def closed(self) -> bool:
        return self._closed

    def segment_paths(self) -> list[Path]:
        with self._mutex:
            return [s.path for s in self._segments]

    def close(self) -> None:
        """Finish in-flight appends, then release the lock. Idempotent."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            self._drain()
            if self._tail_fd is not None:
                os.close(self._tail_fd)
                self._tail_fd = None
            _release_lock(self._lock_fd)

    # -- appending ------------------------------------------------------------------------------

    def append(
        self, drafts: Iterable[Draft], *, epoch: int, ts: str, expected_seq: int | None = None
    ) -> list[Record]:
        """Seal `drafts` after the head and make them durable; returns the sealed records.

        `expected_seq` is the head the caller believes in; if the log's head differs,
        AppendConflict is raised and nothing is written.
        """
        # The seq-independent half of sealing (serialising each event) happens before the lock.
        rendered = codec.render_drafts(drafts)
        with self._mutex:
            self._check_appendable(expected_seq)
            if not rendered:
                return []
            # Sequential by nature (each hash needs the previous one), hence under the lock.
            records, lines = codec.seal_rendered(
                rendered, first_seq=self._head_seq + 1, epoch=epoch, ts=ts, prev_hash=self._head_hash)
            self._commit(lines, records[-1].seq, records[-1].hash)
        return records

    def append_records(self, records: Iterable[Record], *, expected_seq: int | None = None) -> None:
        """Append records sealed elsewhere (a replica copying the quorum log), durably.

        They must continue the log: first seq = head + 1, each hash chained to the one before.
        """
        records = list(records)
        # Already sealed: rendering needs no lock. One rendering gives both the bytes the hash
        # must cover (checked below) and the line to write.
        rendered = [codec.render_record(r) for r in records]
        with self._mutex:
            self._check_appendable(expected_seq)
            if not records:
                return
            head, prev = self._head_seq, self._head_hash
            for r, (canonical, _) in zip(records, rendered):
                if r.seq != head + 1:
                    detail = f"record seq {r.seq} does not follow {head}"
                    raise AppendConflict(records[0].seq - 1, self._head_seq, detail)
                if codec.hash_of(prev, canonical) != r.hash:
                    detail = f"record {r.seq} does not chain to the hash at seq {head}"
                    raise AppendConflict(records[0].seq - 1, self._head_seq, detail)
                head, prev = r.seq, r.hash
            self._commit([line for _, line in rendered], head, prev)

    def _check_appendable(self, expected_seq: int | None) -> None:
        if self._closed:
            raise LogClosedError(f"log {self.path} is closed")
        if self._failed is not None:
            raise LogFailedError(f"log {self.path} failed earlier ({self._failed!r}); reopen it")
        if expected_seq is not None and expected_seq != self._head_seq:
            raise AppendConflict(expected_seq, self._head_seq)

    def _commit(self, lines: list[bytes], last_seq: int, last_hash: str) -> None:
        """Queue framed lines (lock held) and return once they are durable: group commit."""
        self._head_seq, self._head_hash = last_seq, last_hash
        self._pending.append((last_seq, last_hash, lines))
        while self._durable_seq < last_seq:
            if self._failed is not None:
                raise LogFailedError(f"append to {self.path} failed: {self._failed!r}") from self._failed
            if self._flushing:
                self._sleep(last_seq)  # a flush is running; ours goes in the next one
            else:
                self._lead()

    def _drain(self) -> None:
        """Wait (lock held) until nothing is queued or being written."""
        while self._flushing or (self._pending and self._failed is None):
            if self._flushing:
                self._sleep(self._head_seq)
            else:
                self._lead()

    def _sleep(self, until_seq: int) -> None:
        """Sleep (lock released) until a flusher makes `until_seq` durable or hands us the lead.

        One gate per sleeper, opened only for that sleeper: a flush wakes the appenders it
        made durable, not every appender (each wake-up costs a context switch and the GIL).
        """
        gate = threading.Lock()
        gate.acquire()
        entry = (until_seq, gate)
        self._sleepers.append(entry)
        self._mutex.release()
        try:
            gate.acquire()
        except BaseException:  # interrupted: take our gate out, and pass on a lead we may hold
            self._mutex.acquire()
            if entry in self._sleepers:
                self._sleepers.remove(entry)
            if not self._flushing and self._pending and self._sleepers:
                self._sleepers.pop(0)[1].release()
            raise
        self._mutex.acquire()

    def _wake(self) -> None:
        """Open the gates of sleepers whose seq is durable (all of them after a failure)."""
        keep = []
        for until_seq, gate in self._sleepers:
            if until_seq <= self._durable_seq or self._failed is not None:
                gate.release()
            else:
                keep.append((until_seq, gate))
        self._sleepers = keep

    def _lead(self) -> None:
        """Flush once (lock held), then hand the lead to a sleeper if lines were queued meanwhile.

        Handing over rather than flushing again lets the next batch grow while the new leader
        wakes up: measured, that gives fuller batches and more events per fsync.
        """
        self._flush()
        if self._pending and self._failed is None and self._sleepers:
            self._sleepers.pop(0)[1].release()  # every queued line belongs to a sleeper

    def _flush(self) -> None:
        """Write and fsync all queued lines (lock held on entry and exit, released for the I/O)."""
        batch, self._pending = self._pending, []
        self._flushing = True
        lines = batch[0][2] if len(batch) == 1 else [line for _, _, ls in batch for line in ls]
        runs = self._plan(lines, self._durable_seq + 1)
        error: BaseException | None = None
        self._mutex.release()  # appenders keep queueing while we write and fsync
        try:
            self._write_runs(runs)
        except BaseException as exc:
            error = exc
        finally:
            self._mutex.acquire()
            self._flushing = False
        if error is None:
            self._publish(runs, batch[-1][0], batch[-1][1])
        else:
            self._failed = error  # what reached the disk is unknown: refuse appends until reopened
        if self._sleepers:
            self._wake()

    def _plan(self, lines: list[bytes], first_seq: int) -> list[tuple[int | None, list[bytes]]]:
        """Split lines into runs (first seq of a new segment or None for the tail, lines).

        A new segment starts before a line that would take a non-empty one past segment_max_bytes.
        """
        limit = self.segment_max_bytes
        size = self._segments[-1].size if self._segments else 0
        if self._segments and size + sum(map(len, lines)) <= limit:
            return [(None, lines)]  # the common case: everything fits the current tail
        runs: list[tuple[int | None, list[bytes]]] = []
        for seq, line in enumerate(lines, first_seq):
            if not runs and self._segments and not (size > 0 and size + len(line) > limit):
                runs.append((None, []))
            elif not runs or (size > 0 and size + len(line) > limit):
                runs.append((seq, []))
                size = 0
            runs[-1][1].append(line)
            size += len(line)
        return runs

    def _write_runs(self, runs: list[tuple[int | None, list[bytes]]]) -> None:
        """The I/O of one flush (lock not held): one write and one fsync per segment touched."""
        for new_first, lines in runs:
            if new_first is not None:
                self._open_new_segment(new_first)
            assert self._tail_fd is not None
            _write_all(self._tail_fd, lines[0] if len(lines) == 1 else b"".join(lines))
            if self._fsync:
                os.fsync(self._tail_fd)
                self.fsync_count += 1
        self.flush_count += 1

    def _open_new_segment(self, first_seq: int) -> None:
        # The previous tail was fsynced by its own run (or an earlier flush) before we roll.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
        fd = os.open(self.path / segment_name(first_seq), flags, FILE_MODE)
        if self._fsync:
            _fsync_dir(self.path)  # the new file's name must survive a crash too
        if self._tail_fd is not None:
            os.close(self._tail_fd)
        self._tail_fd = fd

    def _publish(self, runs: list[tuple[int | None, list[bytes]]], last_seq: int, last_hash: str) -> None:
        """Index a durable flush and make it visible to readers (lock held)."""
        for new_first, lines in runs:
            if new_first is not None:
                self._segments.append(_Segment(new_first, self.path / segment_name(new_first)))
                self._firsts.append(new_first)
            seg = self._segments[-1]
            offsets, pos = seg.offsets, seg.size
            for line in lines:
                offsets.append(pos)
                pos += len(line)
            seg.size = pos
        self._durable_seq, self._durable_hash = last_seq, last_hash

    # -- reading --------------------------------------------------------------------------------

    def read(self, from_seq: int, to_seq: int | None = None) -> list[Record]:
        """Records from_seq..to_seq inclusive, clipped to 1..head."""
        return list(self._iter_range(from_seq, to_seq))

    def iter_from(self, seq: int = 1) -> Iterator[Record]:
        """Stream records from `seq` to the head as of this call, one line in memory at a time."""
        return self._iter_range(seq, None)

    def _iter_range(self, from_seq: int, to_seq: int | None) -> Iterator[Record]:
        with self._mutex:
            self._check_readable()
            last = self._durable_seq if to_seq is None else min(to_seq, self._durable_seq)
            spans = self._spans(max(from_seq, 1), last)
        return _iter_spans(spans)

    def record_hash(self, seq: int) -> str:
        """The chain hash at `seq` (GENESIS_HASH for 0): two logs agree up to seq iff these match."""
        with self._mutex:
            self._check_readable()
            if seq == 0:
                return codec.GENESIS_HASH
            if not 0 < seq <= self._durable_seq:
                raise IndexError(f"seq {seq} is outside the log (head {self._durable_seq})")
            if seq == self._durable_seq:
                return self._durable_hash
            ((path, offset, _, _),) = self._spans(seq, seq)
        with open(path, "rb") as f:
            f.seek(offset)
            env = env_or_none(f.readline())
        if env is None or env["seq"] != seq:
            raise CorruptLogError(seq, "record unreadable or out of place", segment=path, offset=offset)
        return env["hash"]

    def _check_readable(self) -> None:
        if self._closed:
            raise LogClosedError(f"log {self.path} is closed")

    def _spans(self, first: int, last: int) -> list[tuple[Path, int, int, int]]:
        """(segment, byte offset, first seq, count) covering first..last (lock held)."""
        spans = []
        i = bisect_right(self._firsts, first) - 1
        seq = first
        while seq <= last:
            seg = self._segments[i]
            n = min(last, seg.last_seq) - seq + 1
            spans.append((seg.path, seg.offsets[seq - seg.first_seq], seq, n))
            seq += n
            i += 1
        return spans

    # -- replacing the history ------------------------------------------------------------------

    def set_aside(self) -> Path:
        """Move every segment (and torn-tail file) to aside/<n>/, leaving the log empty.

        For a replica that gets a full copy of a different history: the old one is kept.
        """
        with self._mutex:
            self._check_appendable(None)
            self._drain()
            if self._failed is not None:
                raise LogFailedError(f"log {self.path} failed earlier ({self._failed!r}); reopen it")
            root = self.path / ASIDE_DIR_NAME
            root.mkdir(exist_ok=True)
            n = 1
            while (root / str(n)).exists():
                n += 1
            dest = root / str(n)
            dest.mkdir()
            if self._tail_fd is not None:
                os.close(self._tail_fd)
                self._tail_fd = None
            for entry in sorted(os.scandir(self.path), key=lambda e: e.name):
                if _SEGMENT_FAMILY_RE.match(entry.name) and entry.is_file():
                    os.rename(entry.path, dest / entry.name)
            if self._fsync:
                for d in (dest, root, self.path):
                    _fsync_dir(d)
            self._segments, self._firsts = [], []
            self._durable_seq = self._head_seq = 0
            self._durable_hash = self._head_hash = codec.GENESIS_HASH
            return dest


# ---------------------------------------------------------------------------------------------


def verify_log(path: str | os.PathLike[str]) -> VerifyReport:
    """Check a log directory without opening it for writing and without the lock (read-only).

    Checks every line's CRC, gapless seqs, the hash chain, and that every record decodes.
    A log being appended to right now may show a torn tail that is only a write in progress.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no log directory at {path}")
    scanner = _Scanner(path, decode=True)
    try:
        scanner.run()
    except CorruptLogError as exc:
        return VerifyReport(False, scanner.head_seq, scanner.head_hash, scanner.head_seq, exc.seq, exc.reason, False)
    if scanner.torn is not None:
        reason = f"torn tail: {scanner.torn.reason}"
        head = scanner.head_seq
        return VerifyReport(False, head, scanner.head_hash, head, head + 1, reason, True)
    return VerifyReport(True, scanner.head_seq, scanner.head_hash, scanner.head_seq, None, None, False)


def repair_log(path: str | os.PathLike[str]) -> TruncationReport | None:
    """Cut a torn tail (keeping the bytes in a side file); None when there was none.

    Any other damage raises CorruptLogError: that needs a person, not a tool.
    """
    with EventLog.open(path, create=False) as log:
        return log.truncated
