"""Replay throughput: rebuilding the config DB + membership view from a 1,000,000-event log.

    .venv/bin/python bench/bench_replay.py [--events 1000000] [--keep DIR]

Prints, as a table:
- baseline: read the segment lines and `orjson.loads` each one (the floor any replay pays);
- replay: `roster.logdir.rebuild_from` with no snapshot (CRC check, decode to typed
  records, both projections folded), events/s and the ratio to the baseline (target ≥ 0.35);
- rebuild from a snapshot 1,000 events behind the head (target < 50 ms);
- a per-record cost breakdown of the replay's steps, to show where the time goes.

The log is generated with `roster.history_gen.make_history` and written with EventLog
(fsync off: this measures reading, not the disk). `--keep DIR` writes it there once and
reuses it on later runs. The baseline uses orjson directly on purpose: it is the yardstick.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from events import codec, snapshot_store  # noqa: E402
from events.log import EventLog  # noqa: E402
from events.record import Record  # noqa: E402
from events.types import EVENT_TYPES  # noqa: E402
from projections import config_db, membership  # noqa: E402
from roster import logdir  # noqa: E402
from projections.membership import NodeView  # noqa: E402
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


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


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
    bodies = [codec.unframe(line[:-1]) for line in lines]
    envs = [codec.loads(b) for b in bodies]
    records = [codec.from_envelope(e) for e in envs]
    state = ClusterState()
    validators = {name: cls.__pydantic_validator__.validate_python for name, cls in EVENT_TYPES.items()}
    node = NodeView("n01", "Online", 1, "joined", 1, 0, False)
    steps: list[tuple[str, Callable[[Any], object], list]] = [
        ("orjson.loads(line)  [baseline]", orjson.loads, lines),
        ("codec.unframe (CRC32C, slicing)", lambda line: codec.unframe(line[:-1]), lines),
        ("codec.loads (orjson)", codec.loads, bodies),
        ("codec.from_envelope (pydantic event + Record)", codec.from_envelope, envs),
        (_PART + "pydantic validate_python(data)", lambda e: validators[e["type"]](e["data"]), envs),
        (_PART + "Record(...) (frozen slots dataclass)", lambda r: Record(*_fields(r)), records),
        ("config_db.apply_in_place", lambda r: config_db.apply_in_place(state.config, r), records),
        ("membership.apply_in_place", lambda r: membership.apply_in_place(state.membership, r), records),
        (_PART + "replace(NodeView), per call", lambda _: replace(node, state="Paused", since_seq=2), lines),
    ]
    out = []
    for label, fn, items in steps:
        started = time.perf_counter()
        for x in items:
            fn(x)
        out.append((label, (time.perf_counter() - started) / len(items) * 1e6))
    return out


_PART = "  part of the above: "  # a line that details the one before; not added to the sum


def _fields(r: Record) -> tuple:
    return (r.seq, r.epoch, r.ts, r.node, r.by, r.event, r.hash)


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay throughput benchmark")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best counts")
    parser.add_argument("--keep", type=Path, help="write the log here and reuse it on later runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="roster-bench-") as tmp:
        path = args.keep or Path(tmp) / "log"
        built = build_log(path, args.events)
        segments = list(path.glob("*.jsonl"))
        mib = sum(p.stat().st_size for p in segments) / 2**20
        how = f"generated and written in {built:.0f} s" if built else "reused"
        print(f"log: {args.events:,} events, {mib:,.0f} MiB in {len(segments)} segments ({how})")
        run(path, args.events, args.repeat)


def run(path: Path, n: int, repeat: int) -> None:
    t_base, counted = best_of(repeat, lambda: baseline(path))
    assert counted == n
    t_replay, (state, early) = best_of(repeat, lambda: full_replay(path, n))  # type: ignore[misc]
    assert state.seq == n
    snap_best, snap_median = snapshot_rebuild_ms(path, early, n, repeat=max(repeat, 5))
    base_rate, replay_rate = n / t_base, n / t_replay
    ratio = replay_rate / base_rate
    print()
    print(f"{'measurement':48s} {'events/s':>12s} {'seconds':>9s}")
    print(f"{'baseline: read lines + orjson.loads':48s} {base_rate:12,.0f} {t_base:9.2f}")
    print(f"{'replay: config DB + membership rebuilt':48s} {replay_rate:12,.0f} {t_replay:9.2f}")
    verdict = "met" if ratio >= RATIO_TARGET else "MISSED"
    print(f"\nratio replay/baseline: {ratio:.3f}  (target >= {RATIO_TARGET}: {verdict})")
    verdict = "met" if snap_best < SNAPSHOT_TARGET_MS else "MISSED"
    print(f"rebuild from a snapshot {SNAPSHOT_BEHIND:,} events behind the head: best {snap_best:.1f} ms, "
          f"median {snap_median:.1f} ms  (target < {SNAPSHOT_TARGET_MS:.0f} ms: {verdict})")
    print(f"\nper-record cost of the replay's steps ({min(n, BREAKDOWN_RECORDS):,} records in memory):")
    rows = breakdown(path)
    for label, us in rows:
        print(f"  {label:58s} {us:6.2f} us")
    total = sum(us for label, us in rows[1:] if not label.startswith(_PART))
    print(f"  {'sum of the replay steps':58s} {total:6.2f} us  "
          f"(measured end to end: {1e6 / replay_rate:.2f} us)")


if __name__ == "__main__":
    main()
