"""Durable append throughput: Roster's EventLog vs raw write+fsync vs SQLite (WAL, synchronous=FULL).

    python bench/bench_log_append.py            # full run, under 2 minutes
    python bench/bench_log_append.py --quick    # a smoke run, ~15 seconds

Every system makes each batch durable before the next one starts (one fsync, or one SQLite
commit, per batch). Cells: one appender at batch sizes 1, 10, 100, and 8 appender threads
at batch size 1. Each system runs for a fixed time per cell, in rounds: systems back to back
in a rotating order, ratios taken within a round, medians over rounds reported. That keeps
a slow spell of a shared disk from favouring one column.

- Roster: `EventLog.append(drafts)`: seals (hash chain), frames (JSON + CRC32C), writes, fsyncs.
- raw: the same framed bytes, encoded before timing, written with os.write + os.fsync in a
  plain loop (8 threads: one shared O_APPEND fd, each thread write + fsync).
- SQLite: the same framed bytes as BLOBs, one transaction per batch (8 threads: one
  connection each, BEGIN IMMEDIATE).
- raw+codec (for information): raw, but sealing and framing the records inside the timed loop
  with the same codec call (`codec.seal_and_frame`), i.e. a hand-rolled log without group commit.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from events import codec  # noqa: E402
from events.log import EventLog  # noqa: E402
from events.record import Draft, draft  # noqa: E402
from events.types import HeartbeatMissed, NodeAdded, NodeJoined  # noqa: E402

TS = "2024-05-01T12:00:00.000Z"
POOL_RECORDS = 1000  # distinct pre-framed records the baselines cycle through
CELL_SECONDS_FULL = 0.5  # per system, cell and round
CELL_SECONDS_QUICK = 0.2
ROUNDS_FULL = 8
ROUNDS_QUICK = 2
WARMUP_SECONDS = 0.05
THREADS = 8
SQLITE_BUSY_TIMEOUT_MS = 60_000
TARGET_VS_RAW = 0.8
TARGET_VS_SQLITE = 1.0
CELLS = [(1, 1), (10, 1), (100, 1), (1, THREADS)]  # (batch size, appender threads)

Runner = Callable[[Path, int, int, float], int]  # (dir, batch, threads, seconds) -> events written


def make_drafts(n: int) -> list[Draft]:
    kinds = [lambda i: HeartbeatMissed(count=i % 5 + 1), lambda i: NodeJoined(incarnation=i), lambda i: NodeAdded()]
    return [draft(kinds[i % 3](i), by="n1", node=f"n{i % 8}") for i in range(n)]


DRAFTS = make_drafts(POOL_RECORDS)
LINES = codec.seal_and_frame(DRAFTS, first_seq=1, epoch=1, ts=TS, prev_hash=codec.GENESIS_HASH)[1]


def batches_of(items: list, batch: int) -> list:
    return [items[i : i + batch] for i in range(0, len(items) - batch + 1, batch)]


def run_threads(threads: int, seconds: float, body: Callable[[int, float], int]) -> int:
    """Run body(thread index, deadline) in `threads` threads, started together; sum their counts."""
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)

    def worker(t: int) -> None:
        barrier.wait()
        counts[t] = body(t, deadline[0])

    deadline = [0.0]
    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    deadline[0] = time.perf_counter() + seconds
    barrier.wait()
    for w in workers:
        w.join()
    return sum(counts)


def roster(path: Path, batch: int, threads: int, seconds: float) -> int:
    draft_batches = batches_of(DRAFTS, batch)
    with EventLog.open(path) as log:

        def body(t: int, deadline: float) -> int:
            n, i = 0, t
            while time.perf_counter() < deadline:
                n += len(log.append(draft_batches[i % len(draft_batches)], epoch=1, ts=TS))
                i += threads
            return n

        body(0, time.perf_counter() + WARMUP_SECONDS)
        return run_threads(threads, seconds, body)


def raw(path: Path, batch: int, threads: int, seconds: float) -> int:
    data = [b"".join(b) for b in batches_of(LINES, batch)]  # encoded before timing
    fd = os.open(path / "raw.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:

        def body(t: int, deadline: float) -> int:
            n, i = 0, t
            while time.perf_counter() < deadline:
                os.write(fd, data[i % len(data)])
                os.fsync(fd)
                n += batch
                i += threads
            return n

        body(0, time.perf_counter() + WARMUP_SECONDS)
        return run_threads(threads, seconds, body)
    finally:
        os.close(fd)


def raw_codec(path: Path, batch: int, threads: int, seconds: float) -> int:
    draft_batches = batches_of(DRAFTS, batch)
    fd = os.open(path / "raw.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    chain = {"seq": 0, "hash": codec.GENESIS_HASH}
    lock = threading.Lock()  # the hash chain orders appenders; the fsync is outside it

    def body(t: int, deadline: float) -> int:
        n, i = 0, t
        while time.perf_counter() < deadline:
            with lock:
                drafts = draft_batches[i % len(draft_batches)]
                recs, lines = codec.seal_and_frame(
                    drafts, first_seq=chain["seq"] + 1, epoch=1, ts=TS, prev_hash=chain["hash"])
                chain["seq"], chain["hash"] = recs[-1].seq, recs[-1].hash
                os.write(fd, b"".join(lines))
            os.fsync(fd)
            n += batch
            i += threads
        return n

    try:
        body(0, time.perf_counter() + WARMUP_SECONDS)
        return run_threads(threads, seconds, body)
    finally:
        os.close(fd)


def _sqlite_connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def sqlite(path: Path, batch: int, threads: int, seconds: float) -> int:
    rows = [[(line,) for line in b] for b in batches_of(LINES, batch)]
    db = path / "log.sqlite"
    setup = _sqlite_connect(db)
    setup.execute("CREATE TABLE log (seq INTEGER PRIMARY KEY, line BLOB NOT NULL)")
    conns = [_sqlite_connect(db) for _ in range(threads)]

    def body(t: int, deadline: float) -> int:
        conn, n, i = conns[t], 0, t
        while time.perf_counter() < deadline:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO log (line) VALUES (?)", rows[i % len(rows)])
            conn.execute("COMMIT")
            n += batch
            i += threads
        return n

    try:
        body(0, time.perf_counter() + WARMUP_SECONDS)
        return run_threads(threads, seconds, body)
    finally:
        for c in conns + [setup]:
            c.close()


SYSTEMS: dict[str, Runner] = {"Roster": roster, "raw": raw, "SQLite": sqlite, "raw+codec": raw_codec}


Results = dict[tuple[int, int], dict[str, list[float]]]  # cell -> system -> events/s per round


def measure(root: Path, seconds: float, rounds: int) -> Results:
    """events/s of every system in every cell, once per round.

    Systems run back to back within a round, in an order that rotates from round to round, so a
    slow spell of the shared disk hits every system alike; ratios are taken within a round.
    """
    samples: Results = {c: {s: [] for s in SYSTEMS} for c in CELLS}
    names = list(SYSTEMS)
    for r in range(rounds):
        for cell in CELLS:
            batch, threads = cell
            for name in names[r % len(names) :] + names[: r % len(names)]:
                d = root / f"{name}-{batch}-{threads}-{r}"
                d.mkdir()
                try:
                    events = SYSTEMS[name](d, batch, threads, seconds)
                finally:
                    shutil.rmtree(d)
                samples[cell][name].append(events / seconds)
                where = f"round {r + 1}/{rounds} batch {batch:>3} x {threads} thr"
                print(f"  {where}  {name:<10} {events / seconds:>10,.0f} ev/s", file=sys.stderr)
    return samples


def ratio(samples: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of a/b, each ratio taken within one round."""
    return statistics.median(x / y for x, y in zip(samples[a], samples[b]))


def codec_cost_us() -> float:
    """CPU cost of sealing + framing one record with the codec, in microseconds."""
    n = 20_000
    drafts = (DRAFTS * (n // len(DRAFTS) + 1))[:n]
    start = time.process_time()
    codec.seal_and_frame(drafts, first_seq=1, epoch=1, ts=TS, prev_hash=codec.GENESIS_HASH)
    return (time.process_time() - start) / n * 1e6


def report(results: Results, seconds: float, rounds: int, load: tuple[float, float]) -> str:
    out = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}; {seconds}s per system per cell per round, {rounds} round(s): "
        "medians of events/s and of per-round ratios",
        f"1-minute load average: {load[0]:.2f} before, {load[1]:.2f} after (other processes share the machine)",
        f"codec seal+frame (codec.seal_and_frame): {codec_cost_us():.1f} us/record of CPU time "
        "(paid by Roster and raw+codec only)",
        "",
        "| batch | appenders | Roster ev/s | raw ev/s | SQLite ev/s | Roster/raw | Roster/SQLite "
        f"| ≥{TARGET_VS_RAW}× raw | ≥{TARGET_VS_SQLITE}× SQLite | raw+codec ev/s | Roster/(raw+codec) |",
        "|---:|---:|---:|---:|---:|---:|---:|:---:|:---:|---:|---:|",
    ]
    for (batch, threads), r in results.items():
        med = {name: statistics.median(v) for name, v in r.items()}
        vs_raw, vs_sql, vs_rc = ratio(r, "Roster", "raw"), ratio(r, "Roster", "SQLite"), ratio(r, "Roster", "raw+codec")
        out.append(
            f"| {batch} | {threads} | {med['Roster']:,.0f} | {med['raw']:,.0f} | {med['SQLite']:,.0f} "
            f"| {vs_raw:.2f}× | {vs_sql:.2f}× "
            f"| {'met' if vs_raw >= TARGET_VS_RAW else 'MISSED'} | {'met' if vs_sql >= TARGET_VS_SQLITE else 'MISSED'} "
            f"| {med['raw+codec']:,.0f} | {vs_rc:.2f}× |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short cells, one round: a smoke run")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    seconds = CELL_SECONDS_QUICK if args.quick else CELL_SECONDS_FULL
    rounds = ROUNDS_QUICK if args.quick else ROUNDS_FULL
    root = Path(tempfile.mkdtemp(prefix="bench-log-", dir=args.dir))
    load_before = os.getloadavg()[0]
    try:
        results = measure(root, seconds, rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(report(results, seconds, rounds, (load_before, os.getloadavg()[0])))


if __name__ == "__main__":
    main()
