"""The durable log (events/log.py): appends, reads, segments, the lock, group commit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from events import codec
from events.log import (
    AppendConflict,
    EventLog,
    LogClosedError,
    LogFailedError,
    LogLockedError,
    segment_name,
    verify_log,
)
from events.record import draft
from events.types import HeartbeatMissed, NodeAdded, NodeJoined
from tests.strategies import event_sequences

TS = "2024-05-01T12:00:00.000Z"
ENVELOPE_FIELDS = {"seq", "epoch", "ts", "type", "node", "by", "v", "data", "hash"}
REPO_ROOT = Path(__file__).resolve().parents[1]


def some_drafts(n: int, start: int = 1) -> list:
    kinds = [lambda i: NodeAdded(), lambda i: NodeJoined(incarnation=i), lambda i: HeartbeatMissed(count=i)]
    return [draft(kinds[i % 3](i), by="n1", node=f"n{i % 4}") for i in range(start, start + n)]


def fill(log: EventLog, n: int, *, batch: int = 1, epoch: int = 1) -> list:
    out = []
    for i in range(0, n, batch):
        out += log.append(some_drafts(min(batch, n - i), start=i + 1), epoch=epoch, ts=TS)
    return out


def test_append_read_reopen_roundtrip(tmp_path: Path) -> None:
    with EventLog.open(tmp_path) as log:
        assert (log.head_seq, log.head_hash, len(log)) == (0, codec.GENESIS_HASH, 0)
        written = log.append(some_drafts(3), epoch=2, ts=TS)
        written += log.append(some_drafts(2, start=4), epoch=2, ts=TS)
        assert [r.seq for r in written] == [1, 2, 3, 4, 5]
        assert log.read(1) == written
    with EventLog.open(tmp_path) as log:
        assert log.truncated is None
        assert log.read(1) == written
        assert list(log.iter_from()) == written
        assert log.read(2, 3) == written[1:3]
        assert (log.head_seq, log.head_hash, len(log)) == (5, written[-1].hash, 5)


def test_head_and_record_hash_follow_the_chain(tmp_path: Path) -> None:
    with EventLog.open(tmp_path) as log:
        recs = fill(log, 6, batch=2)
        prev = codec.GENESIS_HASH
        for r in recs:
            assert codec.check_chain(prev, r)
            assert log.record_hash(r.seq) == r.hash
            prev = r.hash
        assert log.record_hash(0) == codec.GENESIS_HASH
        assert log.head_hash == recs[-1].hash
        with pytest.raises(IndexError):
            log.record_hash(7)


def test_read_clips_to_the_head(tmp_path: Path) -> None:
    with EventLog.open(tmp_path) as log:
        recs = fill(log, 4)
        assert log.read(3, 100) == recs[2:]
        assert log.read(0, 1) == recs[:1]
        assert log.read(5) == []
        assert log.read(3, 2) == []
        assert list(log.iter_from(9)) == []


def test_expected_seq_conflict_writes_nothing(tmp_path: Path) -> None:
    with EventLog.open(tmp_path) as log:
        fill(log, 3)
        size_before = sum(p.stat().st_size for p in log.segment_paths())
        with pytest.raises(AppendConflict) as info:
            log.append(some_drafts(1), epoch=1, ts=TS, expected_seq=2)
        assert (info.value.expected, info.value.head) == (2, 3)
        assert "expected head 2, log head is 3" in str(info.value)
        with pytest.raises(AppendConflict):
            log.append_records([], expected_seq=4)
        assert log.head_seq == 3
        assert sum(p.stat().st_size for p in log.segment_paths()) == size_before
        assert log.append(some_drafts(1), epoch=1, ts=TS, expected_seq=3)[0].seq == 4


def test_append_records_copies_a_log_and_rejects_a_wrong_link(tmp_path: Path) -> None:
    with EventLog.open(tmp_path / "a") as src:
        recs = fill(src, 5)
    with EventLog.open(tmp_path / "b") as dst:
        dst.append_records(recs[:3], expected_seq=0)
        with pytest.raises(AppendConflict) as gap:
            dst.append_records(recs[4:])  # skips seq 4
        assert (gap.value.expected, gap.value.head) == (4, 3)
        with EventLog.open(tmp_path / "other") as other:
            foreign = fill(other, 4, epoch=9)  # same seqs, a different history
        with pytest.raises(AppendConflict, match="does not chain"):
            dst.append_records(foreign[3:])
        assert dst.head_seq == 3
        dst.append_records(recs[3:])
        assert dst.read(1) == recs
        assert dst.head_hash == recs[-1].hash
    assert verify_log(tmp_path / "b").ok


def test_segments_roll_and_reads_cross_them_after_reopen(tmp_path: Path) -> None:
    with EventLog.open(tmp_path, segment_max_bytes=1000) as log:
        recs = fill(log, 40, batch=3)
        segs = log.segment_paths()
    assert len(segs) > 3
    assert segs[0].name == segment_name(1) == "00000000000000000001.jsonl"
    for p in segs:
        lines = p.read_bytes().splitlines()
        assert p.name == segment_name(json.loads(lines[0])["seq"])
        assert p.stat().st_size <= 1000 or len(lines) == 1  # one oversize record may stand alone
    with EventLog.open(tmp_path, segment_max_bytes=1000) as log:
        assert log.read(1) == recs
        assert log.read(7, 33) == recs[6:33]
        assert [r.seq for r in log.iter_from(20)] == list(range(20, 41))
        assert log.record_hash(17) == recs[16].hash
        more = fill(log, 5)
        assert more[0].seq == 41
    with EventLog.open(tmp_path) as log:
        assert log.read(1) == recs + more


def test_old_segments_are_never_rewritten(tmp_path: Path) -> None:
    with EventLog.open(tmp_path, segment_max_bytes=600) as log:
        fill(log, 10)
        old = {p: p.read_bytes() for p in log.segment_paths()[:-1]}
        fill(log, 20)
    assert old and all(p.read_bytes() == data for p, data in old.items())


def test_second_open_in_the_same_process_is_locked_out(tmp_path: Path) -> None:
    log = EventLog.open(tmp_path)
    with pytest.raises(LogLockedError) as info:
        EventLog.open(tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg and "\n" not in msg
    log.close()
    with EventLog.open(tmp_path) as again:  # released on close
        assert again.head_seq == 0


def test_lock_holds_against_another_process(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from events.log import EventLog, LogLockedError\n"
        "try:\n    EventLog.open(sys.argv[1])\nexcept LogLockedError as e:\n    print(e); sys.exit(3)\n"
    )

    def other_process() -> subprocess.CompletedProcess:
        argv = [sys.executable, "-c", script, str(tmp_path)]
        return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True)

    with EventLog.open(tmp_path):
        proc = other_process()
        assert proc.returncode == 3, proc.stderr
        assert str(tmp_path) in proc.stdout
    proc = other_process()
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_closed_log_refuses_work(tmp_path: Path) -> None:
    log = EventLog.open(tmp_path)
    fill(log, 2)
    log.close()
    log.close()  # idempotent
    with pytest.raises(LogClosedError):
        fill(log, 1)
    with pytest.raises(LogClosedError):
        log.read(1)


def test_open_without_create_needs_the_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        EventLog.open(tmp_path / "missing", create=False)
    with EventLog.open(tmp_path / "deep" / "log") as log:
        assert log.head_seq == 0
    assert (tmp_path / "deep" / "log").is_dir()  # create=True makes the missing parents


def test_group_commit_under_concurrency(tmp_path: Path) -> None:
    """Invariant 2: every acknowledged append survives a reopen; 8 appenders share fsyncs."""
    threads_n, per_thread = 8, 200
    acked: list[list] = [[] for _ in range(threads_n)]
    start = threading.Barrier(threads_n)

    def appender(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            (rec,) = append_one(log, t, i)
            acked[t].append(rec)

    with EventLog.open(tmp_path, segment_max_bytes=64 * 1024) as log:
        workers = [threading.Thread(target=appender, args=(t,)) for t in range(threads_n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        total = threads_n * per_thread
        assert log.head_seq == total
        assert 0 < log.fsync_count < total, "group commit should share fsyncs between appenders"
        for recs in acked:  # each thread's records are in its own order
            assert [r.seq for r in recs] == sorted(r.seq for r in recs)
    all_acked = sorted((r for recs in acked for r in recs), key=lambda r: r.seq)
    assert [r.seq for r in all_acked] == list(range(1, total + 1))
    with EventLog.open(tmp_path) as log:
        assert log.read(1) == all_acked
    assert verify_log(tmp_path).ok


def append_one(log: EventLog, t: int, i: int) -> list:
    return log.append([draft(HeartbeatMissed(count=i + 1), by=f"t{t}", node="n2")], epoch=1, ts=TS)


def test_compare_and_append_under_concurrency(tmp_path: Path) -> None:
    """Optimistic appenders (expected_seq = the head they saw) never lose or duplicate a slot."""
    threads_n, per_thread = 4, 30
    wins = [0] * threads_n

    def appender(t: int) -> None:
        while wins[t] < per_thread:
            head = log.head_seq
            try:
                log.append(some_drafts(1), epoch=1, ts=TS, expected_seq=head)
                wins[t] += 1
            except AppendConflict as exc:
                assert exc.head != exc.expected

    with EventLog.open(tmp_path, fsync=False) as log:
        workers = [threading.Thread(target=appender, args=(t,)) for t in range(threads_n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert [r.seq for r in log.read(1)] == list(range(1, threads_n * per_thread + 1))


def test_a_failed_fsync_fails_the_log_until_reopened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = EventLog.open(tmp_path)
    good = fill(log, 2)

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(LogFailedError):
        fill(log, 1)
    with pytest.raises(LogFailedError):
        fill(log, 1)
    assert log.head_seq == 2  # the failed append was never acknowledged
    monkeypatch.undo()
    log.close()
    with EventLog.open(tmp_path) as again:  # the unacknowledged record may or may not be there
        assert again.read(1, 2) == good


def test_set_aside_keeps_the_old_history(tmp_path: Path) -> None:
    with EventLog.open(tmp_path, segment_max_bytes=800) as log:
        old = fill(log, 12)
        old_files = {p.name: p.read_bytes() for p in log.segment_paths()}
        first = log.set_aside()
        assert first == tmp_path / "aside" / "1"
        assert {p.name: p.read_bytes() for p in first.iterdir()} == old_files
        assert (log.head_seq, log.head_hash, log.read(1)) == (0, codec.GENESIS_HASH, [])
        new = fill(log, 3, epoch=5)
        assert new[0].seq == 1
        second = log.set_aside()
        assert second == tmp_path / "aside" / "2"
        fill(log, 1)
    with EventLog.open(tmp_path) as log:
        assert log.head_seq == 1
    with EventLog.open(first) as kept:
        assert kept.read(1) == old


def test_segments_are_jq_readable_lines(tmp_path: Path) -> None:
    with EventLog.open(tmp_path, segment_max_bytes=2000) as log:
        fill(log, 20, batch=4)
        segs = log.segment_paths()
    seqs = []
    for p in segs:
        raw = p.read_bytes()
        assert raw.endswith(b"\n")
        for line in raw.decode("utf-8").splitlines():
            obj = json.loads(line)
            assert ENVELOPE_FIELDS <= obj.keys()
            assert set(obj) == ENVELOPE_FIELDS | {"crc"}
            seqs.append(obj["seq"])
    assert seqs == list(range(1, 21))
    if shutil.which("jq"):
        out = subprocess.run(["jq", "-c", ".seq", *map(str, segs)], capture_output=True, text=True, check=True)
        assert out.stdout.split() == [str(s) for s in range(1, 21)]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drafts=event_sequences(max_events=40))
def test_disk_lines_are_exactly_the_codec_frames(tmp_path_factory: pytest.TempPathFactory, drafts: list) -> None:
    """Whatever shortcut append takes, a segment holds codec.frame(record) for each record, in order."""
    path = tmp_path_factory.mktemp("frames")
    half = len(drafts) // 2
    with EventLog.open(path, fsync=False, segment_max_bytes=4096) as log:
        recs = log.append(drafts[:half], epoch=3, ts=TS) + log.append(drafts[half:], epoch=3, ts=TS)
        segs = log.segment_paths()
    assert recs == codec.seal_all(drafts, first_seq=1, epoch=3, ts=TS, prev_hash=codec.GENESIS_HASH)
    assert b"".join(p.read_bytes() for p in segs) == b"".join(codec.frame(r) for r in recs)
    with EventLog.open(path, fsync=False) as log:
        assert log.read(1) == recs
