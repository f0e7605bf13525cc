"""Replay throughput: rebuilding the config DB + membership view from a 1,000,000-event log.

    .venv/bin/python bench/bench_replay.py [--events 1000000] [--keep DIR]

Prints, as tables:
- baseline: read the segment lines and `orjson.loads` each one (the floor any replay pays);
- replay: `roster.logdir.rebuild_from` with no snapshot (CRC check, decode to typed
  records, both projections folded), events/s and the ratio to the baseline (target ≥ 0.35);
  both in wall-clock and in CPU time of this process (`time.process_time`): on a machine
  shared with other jobs the CPU time is the fairer yardstick, and both are reported;
- the same as whole processes: `roster replay LOGDIR --to HEAD_SEQ --no-snapshots` against a
  `python -c` that does the baseline loop (interpreter start and imports included in both);
- rebuild from a snapshot 1,000 events behind the head (target < 50 ms), in-process and as
  `roster replay LOGDIR --to HEAD_SEQ` (which finds and uses that snapshot);
- a per-record cost breakdown of the replay's steps, to show where the time goes.

The log is generated with `roster.history_gen.make_history` and written with EventLog
(fsync off: this measures reading, not the disk). `--keep DIR` writes it there once and
reuses it on later runs. The baseline uses orjson directly on purpose: it is the yardstick.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from events import codec, snapshot_store  # noqa: E402
from events.log import EventLog  # noqa: E402
from events.record import Record  # noqa: E402
from events.types import EVENT_TYPES  # noqa: E402
from projections import config_db, membership, resources  # noqa: E402
from roster import logdir  # noqa: E402
from projections.state import ClusterState  # noqa: E402
from roster.history_gen import make_history  # noqa: E402

DEFAULT_EVENTS = 1_000_000
SEED = 1
N_NODES = 16
APPEND_BATCH = 10_000  # records per append_records call while writing the log
SNAPSHOT_BEHIND = 1_000  # the snapshot sits this many events behind the head
RATIO_TARGET = 0.35  # replay events/s over baseline events/s
SNAPSHOT_TARGET_MS = 50.0
BREAKDOWN_RECORDS = 100_000  # records used for the per-step cost breakdown
READ_BUFFER_BYTES = 1024 * 1024
REPO = Path(__file__).resolve().parents[1]
ROSTER_BIN = Path(sys.executable).with_name("roster")
BASELINE_SCRIPT = (
    "import sys, glob, orjson\n"
    "for seg in sorted(glob.glob(sys.argv[1] + '/*.jsonl')):\n"
    "    with open(seg, 'rb', buffering=1 << 20) as f:\n"
    "        for line in f:\n"
    "            orjson.loads(line)\n"
)


def build_log(path: Path, n_events: int) -> float:
    """Write the history unless `path` already holds it; returns seconds spent (0 if reused)."""
    if logdir.is_log_dir(path) and logdir.LogReader(path).head_seq == n_events:
        return 0.0
    started = time.perf_counter()
    records = make_history(n_events, SEED, N_NODES)
    with EventLog.open(path, fsync=False) as log:
        for i in range(0, len(records), APPEND_BATCH):
            log.append_records(records[i : i + APPEND_BATCH])
    return time.perf_counter() - started


def baseline(path: Path) -> int:
    n = 0
    for seg in sorted(path.glob("*.jsonl")):
        with open(seg, "rb", buffering=READ_BUFFER_BYTES) as f:
            for line in f:
                orjson.loads(line)
                n += 1
    return n


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def timed_process(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of a child process run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def full_replay(path: Path, head: int) -> tuple[ClusterState, ClusterState]:
    """A full replay, in two calls so the state SNAPSHOT_BEHIND events before the head is kept too."""
    reader = logdir.LogReader(path)
    early, _ = logdir.rebuild_from(reader, to_seq=head - SNAPSHOT_BEHIND, use_snapshots=False)
    return logdir.advance(reader, early, head), early


def snapshot_rebuild_ms(path: Path, early: ClusterState, head: int, repeat: int) -> tuple[float, float]:
    snapshot_store.write_snapshot(path, early)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        state, report = logdir.rebuild_from(logdir.LogReader(path))
        times.append((time.perf_counter() - started) * 1000)
        assert report.snapshot_seq == head - SNAPSHOT_BEHIND and state.seq == head, report
    return min(times), statistics.median(times)


def breakdown(path: Path) -> list[tuple[str, float]]:
    """Microseconds per record of each step of the replay's hot loop, on records held in memory."""
    reader = logdir.LogReader(path)
    lines = []
    with open(reader.segments[0][1], "rb") as f:
        for line in f:
            lines.append(line)
            if len(lines) >= BREAKDOWN_RECORDS:
                break
    envs = [codec.parse_line(line) for line in lines]
    records = [codec.decode_line(line) for line in lines]
    state = ClusterState()
    validators = {name: cls.__pydantic_validator__.validate_python for name, cls in EVENT_TYPES.items()}
    steps: list[tuple[str, Callable[[Any], object], list]] = [
        ("orjson.loads(line)  [baseline]", orjson.loads, lines),
        ("codec.decode_line (CRC, one parse, event, Record)", codec.decode_line, lines),
        (_PART + "codec.parse_line (CRC check + orjson.loads)", codec.parse_line, lines),
        (_PART + "pydantic validate_python(data), every record", lambda e: validators[e["type"]](e["data"]), envs),
        (_PART + "Record(...)", lambda r: Record(*_fields(r)), records),
        ("config_db.apply_in_place", lambda r: config_db.apply_in_place(state.config, r), records),
        ("membership.apply_in_place", lambda r: membership.apply_in_place(state.membership, r), records),
        ("resources.apply_in_place", lambda r: resources.apply_in_place(state.resources, r), records),
        ("for scale: codec.from_envelope (the validating path)", codec.from_envelope, envs),
    ]
    out = []
    for label, fn, items in steps:
        started = time.process_time()
        for x in items:
            fn(x)
        out.append((label, (time.process_time() - started) / len(items) * 1e6))
    return out


_PART = "  part of the above: "  # a line that details the one before; not added to the sum


def _fields(r: Record) -> tuple:
    return (r.seq, r.epoch, r.ts, r.node, r.by, r.event, r.hash)


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay throughput benchmark")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each measurement; the best counts")
    parser.add_argument("--keep", type=Path, help="write the log here and reuse it on later runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="roster-bench-") as tmp:
        path = args.keep or Path(tmp) / "log"
        built = build_log(path, args.events)
        segments = list(path.glob("*.jsonl"))
        mib = sum(p.stat().st_size for p in segments) / 2**20
        how = f"generated and written in {built:.0f} s" if built else "reused"
        print(f"log: {args.events:,} events, {mib:,.0f} MiB in {len(segments)} segments ({how})")
        print(f"1-minute load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        run(path, args.events, args.repeat)
        print(f"1-minute load average at end: {os.getloadavg()[0]:.2f}")


def _row(label: str, n: int, wall: float, cpu: float) -> str:
    return f"{label:52s} {n / wall:12,.0f} {wall:8.2f} {n / cpu:12,.0f} {cpu:8.2f}"


def run(path: Path, n: int, repeat: int) -> None:
    for snap in snapshot_store.list_snapshots(path):  # a kept log from an earlier run: start clean
        snapshot_store.snapshot_path(path, snap).unlink()
    base, rep, early = [], [], None
    for _ in range(repeat):  # alternating, so a busy spell of the machine hits both alike
        w, c, counted = timed(lambda: baseline(path))
        assert counted == n
        base.append((w, c))
        w, c, (state, early) = timed(lambda: full_replay(path, n))  # type: ignore[misc]
        assert state.seq == n
        rep.append((w, c))
    bw, bc = min(w for w, _ in base), min(c for _, c in base)
    rw, rc = min(w for w, _ in rep), min(c for _, c in rep)
    print()
    print(f"{'in-process (best of ' + str(repeat) + ')':52s} {'events/s':>12s} {'wall s':>8s} {'ev/CPU-s':>12s} {'CPU s':>8s}")
    print(_row("baseline: read lines + orjson.loads", n, bw, bc))
    print(_row("replay: config DB + membership rebuilt", n, rw, rc))
    verdict = lambda r: "met" if r >= RATIO_TARGET else "MISSED"  # noqa: E731
    print(f"\nratio replay/baseline: wall {bw / rw:.3f} ({verdict(bw / rw)}), "
          f"CPU {bc / rc:.3f} ({verdict(bc / rc)})  (target >= {RATIO_TARGET})")
    whole_process(path, n, repeat)
    snap_best, snap_median = snapshot_rebuild_ms(path, early, n, repeat=max(repeat, 5))
    verdict_snap = "met" if snap_best < SNAPSHOT_TARGET_MS else "MISSED"
    print(f"rebuild from a snapshot {SNAPSHOT_BEHIND:,} events behind the head: best {snap_best:.1f} ms, "
          f"median {snap_median:.1f} ms  (target < {SNAPSHOT_TARGET_MS:.0f} ms: {verdict_snap})")
    w, c = min(timed_process([str(ROSTER_BIN), "replay", str(path), "--to", str(n)]) for _ in range(repeat))
    print(f"  as a process, `roster replay LOGDIR --to {n}` (uses that snapshot): {w * 1000:.0f} ms wall, "
          f"{c * 1000:.0f} ms CPU (interpreter start and imports included)")
    print(f"\nper-record cost of the replay's steps, CPU time ({min(n, BREAKDOWN_RECORDS):,} records in memory):")
    rows = breakdown(path)
    for label, us in rows:
        print(f"  {label:60s} {us:6.2f} us")
    total = rows[1][1] + sum(us for label, us in rows if label.startswith(("config_db", "membership")))
    print(f"  {'sum of the replay steps (decode_line + both folds)':60s} {total:6.2f} us  "
          f"(measured end to end: {1e6 * rc / n:.2f} us CPU)")


def whole_process(path: Path, n: int, repeat: int) -> None:
    """`roster replay` as a user runs it, against the baseline loop as a process of its own."""
    base, rep = [], []
    for _ in range(repeat):
        base.append(timed_process([sys.executable, "-c", BASELINE_SCRIPT, str(path)]))
        rep.append(timed_process([str(ROSTER_BIN), "replay", str(path), "--to", str(n), "--no-snapshots"]))
    bw, bc = min(w for w, _ in base), min(c for _, c in base)
    rw, rc = min(w for w, _ in rep), min(c for _, c in rep)
    print(f"\n{'whole process (best of ' + str(repeat) + ')':52s} {'events/s':>12s} {'wall s':>8s} {'ev/CPU-s':>12s} {'CPU s':>8s}")
    print(_row("python -c <baseline loop> LOGDIR", n, bw, bc))
    print(_row(f"roster replay LOGDIR --to {n} --no-snapshots", n, rw, rc))
    print(f"ratio: wall {bw / rw:.3f}, CPU {bc / rc:.3f}  (target >= {RATIO_TARGET})\n")


if __name__ == "__main__":
    main()
