"""A long seed sweep (not a test): `python bench/sweep_long.py --from 1000 --count 20000 --nodes 5`.

Runs every seed (swarm options drawn from the seed, or `--classic`: every fault kind in the
fixed mix), keeps going past failures, prints each violation with its replay command and a
final tally. Results go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import signal
import time

from roster.sim.scenario import FAULT_KINDS, SimOptions, run_seed

NODES = 5
DURATION_MS = 20_000
SEED_WALL_LIMIT_S = 120  # a seed that runs longer is reported as a hang (a loop at one virtual instant)


class SeedHung(Exception):
    pass


def _alarm(signum, frame):
    raise SeedHung()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="start", type=int, default=1000)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--nodes", type=int, default=NODES)
    ap.add_argument("--classic", action="store_true", help="the fixed mix of every fault kind")
    args = ap.parse_args()
    t0, bad = time.time(), 0
    signal.signal(signal.SIGALRM, _alarm)
    for seed in range(args.start, args.start + args.count):
        signal.alarm(SEED_WALL_LIMIT_S)
        try:
            options = SimOptions.classic(FAULT_KINDS) if args.classic else SimOptions.from_seed(seed)
            r = run_seed(seed, args.nodes, options, DURATION_MS)
        except SeedHung:
            bad += 1
            print(f"seed {seed}: still running after {SEED_WALL_LIMIT_S} s of wall time (a hang?)", flush=True)
            continue
        finally:
            signal.alarm(0)
        if not r.ok:
            bad += 1
            mode = " --faults all --classic" if args.classic else ""
            print(f"seed {seed}: {r.violation}\n  replay: roster simulate --seed {seed} --nodes {args.nodes}"
                  f"{mode} --duration {DURATION_MS / 1000:g}", flush=True)
        if (seed - args.start + 1) % 1000 == 0:
            print(f"... {seed - args.start + 1} seeds, {bad} violations, {time.time() - t0:.0f} s", flush=True)
    print(f"done: {args.count} seeds from {args.start} at {args.nodes} nodes, {bad} violations, "
          f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
