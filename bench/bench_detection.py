"""Failure detection in simulation (issue: cluster protocol). Not a test.

    python bench/bench_detection.py [--trials 200]

For each trial: a 5-node cluster with one group per node, a follower crashes at a random
moment; we measure crash → its NodeDown and crash → its group Online elsewhere, as a
ratio of the configured bound (interval x misses + regroup timeout), with no jitter and
with jitter of half the heartbeat interval. Then false suspicions: crash-free runs with
that jitter, counting NodeDown events.
"""

from __future__ import annotations

import argparse
import time

from actors.node import CreateSpec
from actors.settings import ProtocolSettings
from roster.sim.invariants import InvariantChecker
from roster.sim.world import World

INTERVAL_MS = 100
MISSES = 5
NODES = 5
SETTLE_MS = 3000
QUIET_RUN_MS = 60_000


def _cluster(seed: int, jitter_ms: int) -> World:
    w = World(seed=seed, settings=ProtocolSettings(heartbeat_interval_ms=INTERVAL_MS, heartbeat_misses_before_regroup=MISSES))
    InvariantChecker(w)
    ids = [f"n{i}" for i in range(1, NODES + 1)]
    for n in ids:
        w.add_server(n)
    w.start_quorum()
    w.start_server("n1", create=CreateSpec("bench", "bench", tuple(ids)))
    for n in ids[1:]:
        w.schedule(100, lambda n=n: w.start_server(n))
    for i, n in enumerate(ids):
        w.schedule(1000 + i, lambda i=i, n=n: w.admin("n1", "group-create", f"g{i}", group=f"g{i}", preferred_owners=[n]))
    w.run_until(SETTLE_MS)
    w.net.cond.jitter_ms = jitter_ms
    return w


def _trial(seed: int, jitter_ms: int) -> tuple[int, int] | None:
    w = _cluster(seed, jitter_ms)
    victim = f"n{2 + seed % (NODES - 1)}"
    group = f"g{int(victim[1:]) - 1}"
    crash_at = SETTLE_MS + w.rng.randint(0, INTERVAL_MS * 3)
    w.run_until(crash_at)
    w.crash_server(victim)
    start = len(w.qdisk.records)
    w.run_until(crash_at + 5 * MISSES * INTERVAL_MS)
    down = moved = None
    for r in w.qdisk.records[start:]:
        t = _elapsed(r.ts)
        if r.event.type == "NodeDown" and r.node == victim and down is None:
            down = t - crash_at
        if r.event.type == "GroupMoved" and r.event.group == group and r.event.to_node not in (None, victim) and moved is None:
            moved = t - crash_at
    if down is None or moved is None:
        return None
    # "Online elsewhere" = the new owner started it; the sim's StartGroup follows the commit by one hop.
    return down, moved


def _elapsed(ts: str) -> int:
    from datetime import datetime

    from roster.sim.world import EPOCH_BASE_MS

    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000) - EPOCH_BASE_MS


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    args = ap.parse_args()
    bound = INTERVAL_MS * MISSES + INTERVAL_MS
    print(f"bound = interval x misses + regroup timeout = {bound} ms; {args.trials} trials per row\n")
    print(f"{'jitter':>8} {'down p50':>9} {'down p99':>9} {'moved p50':>10} {'moved p99':>10} {'p99/bound':>10} {'missing':>8}")
    for jitter in (1, INTERVAL_MS // 2):
        t0 = time.time()
        downs, moves, missing = [], [], 0
        for seed in range(args.trials):
            res = _trial(seed, jitter)
            if res is None:
                missing += 1
                continue
            downs.append(res[0])
            moves.append(res[1])
        print(f"{jitter:>6}ms {_pct(downs, .5):>9} {_pct(downs, .99):>9} {_pct(moves, .5):>10} {_pct(moves, .99):>10} "
              f"{_pct(moves, .99) / bound:>10.2f} {missing:>8}   ({time.time() - t0:.0f} s)")
    false_downs = 0
    runs = max(args.trials // 20, 5)
    for seed in range(runs):
        w = _cluster(10_000 + seed, INTERVAL_MS // 2)
        start = len(w.qdisk.records)
        w.run_until(SETTLE_MS + QUIET_RUN_MS)
        false_downs += sum(1 for r in w.qdisk.records[start:] if r.event.type == "NodeDown")
    print(f"\nfalse suspicions at jitter {INTERVAL_MS // 2} ms: {false_downs} NodeDown in {runs} x {QUIET_RUN_MS // 1000} s crash-free runs")


if __name__ == "__main__":
    main()
