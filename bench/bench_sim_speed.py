"""Simulator speed: seeds per CPU minute for the CI sweeps' configurations (issue 11). Not a test.

    python bench/bench_sim_speed.py [--seeds 100] [--swarm7-seeds 40] [--without-checker]

Each configuration runs a block of the same seeds CI runs (classic: every fault kind, 5 nodes;
swarm at 5 and 7 nodes; 20 virtual s each) and reports CPU seconds per seed and seeds per CPU
minute (`time.process_time`: other jobs on the box move it little). It also prints a
fingerprint of every run's outcome (verdict, events, messages, steps, the quorum log's head
hash): a speed-up must leave it unchanged, since one seed has to replay one run exactly.

`--without-checker` runs each block again with the invariant checker detached after every
step: the difference is what the checker costs. Its runs must be the same (events, messages,
steps, quorum head per seed; the verdict is left out, as the end-of-run checks need the
checker): the checker watches a run, it never steers one.
"""

from __future__ import annotations

import argparse
import hashlib
import time

from roster.sim.scenario import FAULT_KINDS, Scenario, SimOptions

DURATION_MS = 20_000
SWARM_FIRST_SEED = 100_000  # as tests/test_sim_sweep.py


def _configs(args) -> list[tuple[str, int, range, object]]:
    return [
        ("classic, 5 nodes", 5, range(1, 1 + args.seeds), lambda s: SimOptions.classic(FAULT_KINDS)),
        ("swarm, 5 nodes", 5, range(SWARM_FIRST_SEED, SWARM_FIRST_SEED + args.seeds), SimOptions.from_seed),
        ("swarm, 7 nodes", 7, range(1, 1 + args.swarm7_seeds), SimOptions.from_seed),
    ]


def _run(nodes: int, seeds: range, options_of, checker: bool = True) -> tuple[float, float, str, str, int]:
    """(CPU s, wall s, fingerprint with verdicts, fingerprint of the runs alone, violations)."""
    h, runs, bad = hashlib.sha256(), hashlib.sha256(), 0
    c0, w0 = time.process_time(), time.perf_counter()
    for seed in seeds:
        sc = Scenario(seed, nodes, options_of(seed), DURATION_MS)
        if not checker:  # (its end-of-run checks then fail: the verdict means nothing here)
            sc.world.observers.remove(sc.checker)
        r = sc.run()
        bad += not r.ok
        head = sc.world.qdisk.records[-1].hash if sc.world.qdisk.records else ""
        h.update(f"{seed} {r.ok} {r.events} {r.messages} {r.steps} {head}\n".encode())
        runs.update(f"{seed} {r.events} {r.messages} {r.steps} {head}\n".encode())
    return time.process_time() - c0, time.perf_counter() - w0, h.hexdigest()[:16], runs.hexdigest()[:16], bad


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--swarm7-seeds", type=int, default=40)
    ap.add_argument("--without-checker", action="store_true", help="also run each block with no invariant checker")
    args = ap.parse_args()
    print(f"{'configuration':<18} {'seeds':>5} {'CPU s/seed':>11} {'seeds/CPU min':>14} {'wall s':>7} "
          f"{'violations':>10}  fingerprint")
    for name, nodes, seeds, options_of in _configs(args):
        cpu, wall, fp, runs_fp, bad = _run(nodes, seeds, options_of)
        n = len(seeds)
        print(f"{name:<18} {n:>5} {cpu / n:>11.3f} {60 * n / cpu:>14.1f} {wall:>7.1f} {bad:>10}  {fp}", flush=True)
        if args.without_checker:
            bare, bare_wall, _, bare_runs_fp, _ = _run(nodes, seeds, options_of, checker=False)
            same = "same runs" if bare_runs_fp == runs_fp else "RUNS DIFFER"
            print(f"{'  no checker':<18} {n:>5} {bare / n:>11.3f} {60 * n / bare:>14.1f} {bare_wall:>7.1f} {'-':>10}  "
                  f"{same}: checker {1 - bare / cpu:.0%} of CPU", flush=True)


if __name__ == "__main__":
    main()
