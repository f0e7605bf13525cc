"""`roster simulate`: the protocol cores under faults, in the deterministic simulator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from roster.errors import UserError
from roster.progress import Progress
from roster.sim.scenario import FAULT_KINDS, RunResult, SimOptions, run_seed

EXIT_VIOLATION = 1
MAX_NODES = 1000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="run the protocol in the deterministic simulator under faults")
    p.add_argument("--seed", type=int, default=1, help="the seed that decides every random choice (default 1)")
    p.add_argument("--seeds", type=int, default=1, help="run this many seeds, from --seed on")
    p.add_argument("--nodes", type=int, default=5, help="cluster size (default 5)")
    p.add_argument("--faults", default=None,
                   help=f"pin the fault kinds (comma-separated: {','.join(FAULT_KINDS)}; 'all'; 'none'); "
                        "default: each seed draws its own (swarm testing)")
    p.add_argument("--classic", action="store_true",
                   help="the fixed fault mix of the regression seeds instead of options drawn from the seed")
    p.add_argument("--duration", type=float, default=20.0, help="virtual seconds per run (default 20)")
    p.add_argument("--out", type=Path, help="write the quorum log and every replica here (quorum/, nodes/<id>/)")
    p.set_defaults(func=simulate)


def _faults(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    if text.strip() == "all":
        return FAULT_KINDS
    kinds = tuple(k.strip() for k in text.split(",") if k.strip() and k.strip() != "none")
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise UserError(f"unknown fault kind(s) {', '.join(unknown)}; choose from {', '.join(FAULT_KINDS)}")
    return kinds


def options_for(seed: int, faults: tuple[str, ...] | None, classic: bool) -> SimOptions:
    if classic:
        return SimOptions.classic(FAULT_KINDS if faults is None else faults)
    return SimOptions.from_seed(seed, faults)


def replay_command(seed: int, args: argparse.Namespace, faults: tuple[str, ...] | None) -> str:
    pinned = "" if faults is None else f" --faults {','.join(faults) or 'none'}"
    classic = " --classic" if args.classic else ""
    return f"roster simulate --seed {seed} --nodes {args.nodes}{pinned}{classic} --duration {args.duration:g}"


def simulate(args: argparse.Namespace) -> int:
    faults = _faults(args.faults)
    if not 1 <= args.nodes <= MAX_NODES:
        raise UserError(f"--nodes must be between 1 and {MAX_NODES}")
    if args.duration <= 0 or args.seeds < 1:
        raise UserError("--duration and --seeds must be positive")
    if args.out is not None and args.seeds > 1:
        raise UserError("--out writes one run's logs: use it with a single seed")
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        raise UserError(f"--out {args.out} already holds files; choose an empty or new folder")
    duration_ms = int(args.duration * 1000)
    results: list[RunResult] = []
    progress = Progress(args.seeds, "seeds") if args.seeds > 1 else None
    for seed in range(args.seed, args.seed + args.seeds):
        result = run_seed(seed, args.nodes, options_for(seed, faults, args.classic), duration_ms, out=args.out)
        results.append(result)
        if progress:
            progress.advance()
        if not result.ok:
            break
    if progress:
        progress.close()
    _summary(results)
    if len(results) == 1 and results[0].options is not None:
        print(f"options  {results[0].options.describe()}")
    bad = next((r for r in results if not r.ok), None)
    if bad is not None:
        assert bad.violation is not None
        print(f"VIOLATION (seed {bad.seed}): {bad.violation}", file=sys.stderr)
        if bad.options is not None:
            print(f"options: {bad.options.describe()}", file=sys.stderr)
        print(f"replay it: {replay_command(bad.seed, args, faults)}", file=sys.stderr)
        return EXIT_VIOLATION
    if args.out is not None:
        print(f"logs written to {args.out} (try: roster replay {args.out / 'quorum'} --to 10)")
    return 0


def _pct(values: list[int], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return str(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def _summary(results: list[RunResult]) -> None:
    detection = [d for r in results for d in r.detection_ms]
    rows = [
        ("runs", len(results)),
        ("invariants held", sum(r.ok for r in results)),
        ("events appended", sum(r.events for r in results)),
        ("regroups", sum(r.regroups for r in results)),
        ("failovers", sum(r.failovers for r in results)),
        ("crash -> NodeDown p50/p99 ms", f"{_pct(detection, 0.5)} / {_pct(detection, 0.99)}"),
        ("downs of live nodes (partitions, false suspicions)", sum(r.false_downs for r in results)),
        ("messages", sum(r.messages for r in results)),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
