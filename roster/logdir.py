"""Replay from a log directory: the file-reading half of the replay tools.

Reads segment files without taking the log's lock (so `roster replay` works on a directory a
running node holds) through the log's own reader (`events.log_reader`: the same line rules
as `EventLog`), finds times by bisection, and rebuilds projections from the newest valid
snapshot plus the tail. The pure folds, diff and timeline are in
`projections.replay`; this module is the shell around them (DESIGN §5: no core touches files).
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterator

from events import snapshot_store
from events.log_reader import NotALogError, SegmentReader, is_log_dir
from projections import config_db, membership, resources
from projections.replay import parse_time
from projections.state import ClusterState

__all__ = ["LogReader", "NotALogError", "ReplayReport", "is_log_dir", "rebuild", "rebuild_from", "advance"]

PROGRESS_EVERY_RECORDS = 10_000  # how often a long replay reports progress

Progress = Callable[[int, int], None]  # (records applied, records to apply)


class LogReader(SegmentReader):
    """The log's own lock-free reader (`events.log_reader.SegmentReader`), plus time lookups.

    The head is fixed when the reader is made (records a running node appends later are not
    seen); a torn last line is ignored, damage anywhere else raises CorruptLogError.
    """

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
    with _no_cycle_collection():
        _fold_records(reader, state, first, last, progress)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cyclic GC paused for a replay: it makes no cycles, so refcounting frees all it drops.

    With the GC on, the objects a long fold keeps (the views, the codec's reused events) make
    it run full collections over the whole heap again and again; measured, that was up to
    1 µs of a 6 µs record. Collection resumes (if it was on) however the replay ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _fold_records(reader: LogReader, state: ClusterState, first: int, last: int, progress: Progress | None) -> None:
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
        snap, warnings = snapshot_store.load_newest_valid(
            where, reader.hash_at, decode=ClusterState.from_dict, max_seq=target)
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
