"""Crash consistency of the durable log: torn tails are cut (and kept), other damage is refused."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from events import codec
from events.log import CorruptLogError, EventLog, repair_log, segment_name, verify_log
from events.record import draft
from events.types import HeartbeatMissed, NodeAdded, NodeJoined

TS = "2024-05-01T12:00:00.000Z"
RECORDS_N = 6


def some_drafts(n: int) -> list:
    kinds = [lambda i: NodeAdded(), lambda i: NodeJoined(incarnation=i), lambda i: HeartbeatMissed(count=i)]
    return [draft(kinds[i % 3](i), by="n1", node=f"n{i}") for i in range(1, n + 1)]


def write_log(path: Path, n: int = RECORDS_N, **kw) -> list:
    with EventLog.open(path, **kw) as log:
        return [log.append([d], epoch=1, ts=TS)[0] for d in some_drafts(n)]


def line_starts(seg: Path) -> list[int]:
    """Byte offset of each line, plus the file size at the end."""
    starts, pos = [], 0
    for line in seg.read_bytes().splitlines(keepends=True):
        starts.append(pos)
        pos += len(line)
    return starts + [pos]


def side_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if ".torn-" in p.name)


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_every_cut_inside_the_last_two_records_recovers_the_whole_prefix(tmp_path: Path) -> None:
    """Invariant 2: a crash mid-write loses at most the record being written, never one before.

    For every byte offset inside the last two records the segment is cut there (a torn write):
    reopening keeps exactly the whole records before the cut, never a partial one, never fails,
    and keeps the cut bytes in a side file.
    """
    pristine = tmp_path / "pristine"
    recs = write_log(pristine)
    seg_name = segment_name(1)
    data = (pristine / seg_name).read_bytes()
    starts = line_starts(pristine / seg_name)
    case = tmp_path / "case"  # one directory, rewritten per cut: unlinks are slow on a busy disk
    case.mkdir()
    for cut in range(starts[RECORDS_N - 2], starts[RECORDS_N]):
        (case / seg_name).write_bytes(data[:cut])
        whole = sum(1 for s in starts[1:] if s <= cut)  # records whose newline survived the cut
        # fsync=False only to keep ~400 reopens fast; the cut logic is the same either way.
        with EventLog.open(case, fsync=cut == starts[RECORDS_N - 1] + 1) as log:
            assert log.head_seq == whole, cut
            assert log.read(1) == recs[:whole]
            assert log.head_hash == recs[whole - 1].hash
            if cut == starts[whole]:  # cut on a record boundary: nothing torn
                assert log.truncated is None and side_files(case) == []
            else:
                t = log.truncated
                assert t is not None and t.offset == starts[whole] and t.next_seq == whole + 1
                assert t.byte_count == cut - starts[whole]
                assert side_files(case) == [t.saved_to]
                assert t.saved_to.read_bytes() == data[starts[whole] : cut]
            assert (case / seg_name).stat().st_size == starts[whole]
            log.append(some_drafts(1), epoch=2, ts=TS)  # and the log goes on from there
        assert verify_log(case).ok
        for side in side_files(case):
            side.unlink()


def test_torn_tail_of_zeros_and_garbage_is_cut(tmp_path: Path) -> None:
    """Invariant 2: a tail of zeros (unwritten blocks) after the acknowledged records is not data."""
    recs = write_log(tmp_path)
    seg = tmp_path / segment_name(1)
    with open(seg, "ab") as f:
        f.write(b"\x00" * 4096 + b"\n" + b'{"seq":7,"garbage\n')
    with EventLog.open(tmp_path) as log:
        assert log.read(1) == recs
        assert log.truncated is not None and log.truncated.byte_count == 4096 + 1 + 18


def test_a_torn_tail_in_the_last_of_several_segments(tmp_path: Path) -> None:
    """Invariant 2: cutting the newest segment anywhere keeps every earlier segment intact."""
    pristine = tmp_path / "pristine"
    recs = write_log(pristine, n=12, segment_max_bytes=700)
    last = sorted(p for p in pristine.iterdir() if p.name.endswith(".jsonl"))[-1]
    first_in_last = int(last.name.split(".")[0])
    starts = line_starts(last)
    for cut in range(0, starts[-1], 7):
        case = tmp_path / f"cut-{cut}"
        shutil.copytree(pristine, case)
        os.truncate(case / last.name, cut)
        whole = first_in_last - 1 + sum(1 for s in starts[1:] if s <= cut)
        with EventLog.open(case, fsync=False) as log:
            assert log.read(1) == recs[:whole]
        shutil.rmtree(case)


def test_a_flipped_byte_in_an_older_record_is_corruption(tmp_path: Path) -> None:
    recs = write_log(tmp_path)
    seg = tmp_path / segment_name(1)
    starts = line_starts(seg)
    flip_byte(seg, starts[2] + 30)  # inside record 3 of 6
    with pytest.raises(CorruptLogError) as info:
        EventLog.open(tmp_path)
    assert info.value.seq == 3 and "seq 3" in str(info.value)
    assert "crc" in info.value.reason
    report = verify_log(tmp_path)
    assert (report.ok, report.first_bad_seq, report.torn_tail) == (False, 3, False)
    assert (report.head_seq, report.head_hash, report.records) == (2, recs[1].hash, 2)
    with pytest.raises(CorruptLogError):  # not LogLockedError: the failed open released the lock
        repair_log(tmp_path)
    assert seg.stat().st_size == starts[-1]  # nothing was cut
    assert side_files(tmp_path) == []
    flip_byte(seg, starts[2] + 30)
    with EventLog.open(tmp_path) as log:
        assert log.read(1) == recs


def test_damage_at_the_end_of_an_older_segment_is_corruption(tmp_path: Path) -> None:
    write_log(tmp_path, n=12, segment_max_bytes=700)
    first_seg = tmp_path / segment_name(1)
    starts = line_starts(first_seg)
    os.truncate(first_seg, starts[-1] - 5)  # torn, but a newer segment follows
    bad_seq = len(starts) - 1
    with pytest.raises(CorruptLogError) as info:
        EventLog.open(tmp_path)
    assert info.value.seq == bad_seq
    report = verify_log(tmp_path)
    assert (report.ok, report.first_bad_seq, report.torn_tail) == (False, bad_seq, False)


def test_a_missing_line_is_a_seq_gap(tmp_path: Path) -> None:
    write_log(tmp_path)
    seg = tmp_path / segment_name(1)
    lines = seg.read_bytes().splitlines(keepends=True)
    seg.write_bytes(b"".join(lines[:3] + lines[4:]))
    with pytest.raises(CorruptLogError) as info:
        EventLog.open(tmp_path)
    assert info.value.seq == 4 and "gap" in info.value.reason
    assert verify_log(tmp_path).first_bad_seq == 4


def test_a_missing_segment_is_a_seq_gap(tmp_path: Path) -> None:
    write_log(tmp_path, n=12, segment_max_bytes=700)
    segs = sorted(p for p in tmp_path.iterdir() if p.name.endswith(".jsonl"))
    missing_first = int(segs[1].name.split(".")[0])
    segs[1].rename(tmp_path / "elsewhere")
    with pytest.raises(CorruptLogError) as info:
        EventLog.open(tmp_path)
    assert info.value.seq == missing_first
    assert verify_log(tmp_path).first_bad_seq == missing_first


def test_a_valid_line_from_another_history_breaks_the_chain(tmp_path: Path) -> None:
    write_log(tmp_path / "a")
    with EventLog.open(tmp_path / "b") as other:
        other.append(some_drafts(3), epoch=7, ts=TS)  # seq 3 exists there too, differently
    a, b = (tmp_path / x / segment_name(1) for x in "ab")
    a_lines = a.read_bytes().splitlines(keepends=True)
    b_lines = b.read_bytes().splitlines(keepends=True)
    a.write_bytes(b"".join(a_lines[:2] + b_lines[2:3] + a_lines[3:]))  # each line's CRC is fine
    with pytest.raises(CorruptLogError) as info:
        EventLog.open(tmp_path / "a")
    assert info.value.seq == 3 and "chain" in info.value.reason
    report = verify_log(tmp_path / "a")
    assert (report.first_bad_seq, report.torn_tail) == (3, False)


def test_verify_then_repair_a_torn_tail(tmp_path: Path) -> None:
    """Invariant 2: repair only cuts what was never acknowledged, and keeps those bytes."""
    recs = write_log(tmp_path)
    seg = tmp_path / segment_name(1)
    starts = line_starts(seg)
    os.truncate(seg, starts[-1] - 40)  # the last record is torn
    report = verify_log(tmp_path)
    assert (report.ok, report.torn_tail, report.head_seq) == (False, True, RECORDS_N - 1)
    assert report.first_bad_seq == report.head_seq + 1
    assert report.head_hash == recs[-2].hash
    assert seg.stat().st_size == starts[-1] - 40  # verify is read-only
    cut = repair_log(tmp_path)
    assert cut is not None and cut.next_seq == RECORDS_N and cut.saved_to.exists()
    again = verify_log(tmp_path)
    assert (again.ok, again.head_seq, again.first_bad_seq, again.torn_tail) == (True, RECORDS_N - 1, None, False)
    assert repair_log(tmp_path) is None


def test_verify_does_not_need_the_lock(tmp_path: Path) -> None:
    recs = write_log(tmp_path)
    with EventLog.open(tmp_path):
        report = verify_log(tmp_path)
    assert report.ok and report.head_hash == recs[-1].hash and report.records == RECORDS_N


def test_an_empty_or_new_log_verifies(tmp_path: Path) -> None:
    report = verify_log(tmp_path)
    assert (report.ok, report.head_seq, report.head_hash) == (True, 0, codec.GENESIS_HASH)
    with pytest.raises(FileNotFoundError):
        verify_log(tmp_path / "missing")


def test_a_torn_first_line_leaves_an_empty_log(tmp_path: Path) -> None:
    seg = tmp_path / segment_name(1)
    write_log(tmp_path, n=1)
    os.truncate(seg, 10)
    with EventLog.open(tmp_path) as log:
        assert log.head_seq == 0 and log.truncated is not None and log.truncated.byte_count == 10
        assert log.append(some_drafts(1), epoch=1, ts=TS)[0].seq == 1
    assert verify_log(tmp_path).ok


def test_repeated_tears_at_one_offset_keep_every_side_file(tmp_path: Path) -> None:
    write_log(tmp_path, n=2)
    seg = tmp_path / segment_name(1)
    size = seg.stat().st_size
    for junk in (b'{"torn', b'{"also torn'):
        with open(seg, "ab") as f:
            f.write(junk)
        with EventLog.open(tmp_path) as log:
            assert log.truncated is not None and log.truncated.offset == size
    assert [p.read_bytes() for p in side_files(tmp_path)] == [b'{"torn', b'{"also torn']
