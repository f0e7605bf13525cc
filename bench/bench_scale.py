"""Scale in simulation (issue: cluster protocol). Not a test.

    python bench/bench_scale.py [--sizes 10,100,1000] [--minutes 10] [--no-share]

Each size: a cluster created and joined, then run for the given virtual minutes with the
default timings (heartbeat 1000 ms, 5 misses). Reports wall and CPU time, messages per
virtual second (and per node), and events appended. The invariant checker is off here (it
renders every replica's projection on every change, which is a test's job, not a
benchmark's), and the replicas share the states of identical prefixes
(`roster.sim.shared_folds`; a test shows a run with them is the same run) unless `--no-share`.
"""

from __future__ import annotations

import argparse
import time

from actors.node import CreateSpec
from actors.settings import ProtocolSettings
from roster.sim.world import World

JOIN_SPREAD_MS = 20_000


def run(size: int, minutes: float, share: bool = True) -> tuple[float, float, float, int, int]:
    w = World(seed=size, settings=ProtocolSettings(), share_folds=share)
    ids = [f"n{i}" for i in range(1, size + 1)]
    for n in ids:
        w.add_server(n)
    w.start_quorum()
    w.start_server("n1", create=CreateSpec("scale", "scale", tuple(ids)))
    for n in ids[1:]:
        w.schedule(w.rng.randint(100, JOIN_SPREAD_MS), lambda n=n: w.start_server(n))
    t0, c0 = time.perf_counter(), time.process_time()
    duration_ms = int(minutes * 60_000)
    w.run_until(duration_ms // 2)
    half_messages = w.messages
    w.run_until(duration_ms)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    online = sum(1 for n in w.quorum_state().membership.nodes.values() if n.state == "Online")
    steady = (w.messages - half_messages) / (duration_ms / 2000)  # second half: joins are over
    return wall, cpu, steady, len(w.qdisk.records), online


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--no-share", action="store_true", help="every replica folds for itself")
    args = ap.parse_args()
    print("messages per virtual second are measured over the second half of the run (after the joins)")
    print(f"{'nodes':>6} {'wall s':>8} {'CPU s':>8} {'msgs/virtual s':>15} {'msgs/s/node':>12} {'events':>8} {'online':>7}")
    for size in (int(s) for s in args.sizes.split(",")):
        wall, cpu, rate, events, online = run(size, args.minutes, share=not args.no_share)
        print(f"{size:>6} {wall:>8.1f} {cpu:>8.1f} {rate:>15.1f} {rate / size:>12.2f} {events:>8} {online:>7}",
              flush=True)


if __name__ == "__main__":
    main()
