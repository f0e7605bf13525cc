"""Everything a simulated run may vary, in one place, drawn from the seed (swarm testing).

Like TigerBeetle's VOPR: a seed decides not only the faults' timing but which fault kinds
are on at all and how hard each one hits, so a sweep explores many different worlds
instead of one mix. `SimOptions.classic(faults)` is the fixed mix every run used before
(the regression seeds were found with it and replay with it exactly).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

FAULT_KINDS = ("crash", "partition", "loss", "delay", "dup", "torn")
SWARM_FAULT_ON_PROBABILITY = 0.6  # each kind is on in about this share of swarm seeds
SWARM_TIMER_LATE_MAX_MS = 20  # a fifth of the simulator's 100 ms interval: inside the 25 ms grace
SWARM_DRIFT_MAX_PPM = 10_000  # the protocol's default drift bound (actors/settings.py)
OPTIONS_SALT = "roster-sim-options"  # a separate stream: drawing options never shifts the world's RNG


@dataclass(frozen=True)
class SimOptions:
    faults: tuple[str, ...]
    fault_gap_min_ms: int = 300  # between two injected faults
    fault_gap_max_ms: int = 1500
    fault_duration_min_detections: float = 0.5  # how long a fault lasts, in detection times
    fault_duration_max_detections: float = 3.0
    loss_min: float = 0.05  # a loss fault drops this share of messages
    loss_max: float = 0.3
    dup_min: float = 0.05
    dup_max: float = 0.3
    jitter_max_intervals: float = 0.5  # a delay fault adds up to this many intervals of jitter
    quorum_crash_probability: float = 0.15  # a crash fault takes the quorum instead of a server
    torn_write_probability: float = 0.5  # a crashed server's last write is torn (with "torn")
    one_way_partition_probability: float = 0.3
    admin_gap_ms: int = 1500  # mean gap between two admin commands of the workload
    groups: int = 3
    start_spread_min_ms: int = 50  # servers other than the creator start in this window
    start_spread_max_ms: int = 400
    # Resources (none in the classic mix): each group gets this many `process` resources.
    resources_per_group: int = 0
    resource_crash_per_s: float = 0.0  # a running resource exits (crash)
    resource_hang_per_s: float = 0.0  # its health check times out while it lives on (hang)
    resource_slow_start_max_ms: int = 0  # a start may take this much longer (slow start)
    bad_command_probability: float = 0.0  # a resource whose command does not exist (never starts)
    # Faults of the hosts rather than the network (off in the classic mix):
    timer_late_max_ms: int = 0  # every timer fires late by a random 0..this many ms (a loaded host)
    pause_gap_ms: int = 0  # mean gap between two process pauses of one server; 0: no pauses
    pause_max_detections: float = 0.0  # a pause lasts up to this many detection times
    clock_drift_ppm: int = 0  # each server's clock runs at a rate within 1 ± this (parts per million)

    def __post_init__(self) -> None:
        unknown = set(self.faults) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))}")

    @classmethod
    def classic(cls, faults: tuple[str, ...] = FAULT_KINDS) -> SimOptions:
        return cls(faults=tuple(faults))

    @classmethod
    def from_seed(cls, seed: int, faults: tuple[str, ...] | None = None) -> SimOptions:
        """Swarm options for `seed`; `faults` pins the fault kinds (the rest is still drawn)."""
        rng = random.Random(f"{OPTIONS_SALT}:{seed}")
        drawn = tuple(k for k in FAULT_KINDS if rng.random() < SWARM_FAULT_ON_PROBABILITY)
        gap_min = rng.randint(100, 800)
        loss_max = rng.uniform(0.05, 0.5)
        dup_max = rng.uniform(0.05, 0.5)
        # Drawn after every older option, so those stay what they were for each seed.
        timer_late = rng.randint(0, SWARM_TIMER_LATE_MAX_MS)
        pauses = rng.random() < SWARM_FAULT_ON_PROBABILITY
        pause_gap, pause_max = rng.randint(1000, 6000), rng.uniform(0.2, 2.0)
        drift = rng.randint(0, SWARM_DRIFT_MAX_PPM) if rng.random() < SWARM_FAULT_ON_PROBABILITY else 0
        return cls(
            timer_late_max_ms=timer_late,
            pause_gap_ms=pause_gap if pauses else 0,
            pause_max_detections=pause_max if pauses else 0.0,
            clock_drift_ppm=drift,
            faults=tuple(faults) if faults is not None else drawn,
            fault_gap_min_ms=gap_min,
            fault_gap_max_ms=gap_min + rng.randint(100, 2500),
            fault_duration_min_detections=rng.uniform(0.2, 1.0),
            fault_duration_max_detections=rng.uniform(1.0, 4.0),
            loss_min=loss_max * rng.uniform(0.1, 0.9),
            loss_max=loss_max,
            dup_min=dup_max * rng.uniform(0.1, 0.9),
            dup_max=dup_max,
            jitter_max_intervals=rng.uniform(0.05, 1.0),
            quorum_crash_probability=rng.uniform(0.0, 0.3),
            torn_write_probability=rng.uniform(0.1, 0.9),
            one_way_partition_probability=rng.uniform(0.0, 0.6),
            admin_gap_ms=rng.randint(200, 3000),
            groups=rng.randint(1, 6),
            start_spread_min_ms=rng.randint(0, 100),
            start_spread_max_ms=rng.randint(150, 1500),
            **_resource_options(rng),
        )

    @property
    def has_resources(self) -> bool:
        return self.resources_per_group > 0

    def describe(self) -> str:
        """One line for a run's report: everything needed to see what the seed chose."""
        parts = []
        for key, value in asdict(self).items():
            if key == "faults":
                parts.append(f"faults={','.join(value) or 'none'}")
            else:
                parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
        return " ".join(parts)


def _resource_options(rng: random.Random) -> dict:
    """Resources in about two thirds of swarm seeds, with their faults drawn too."""
    if rng.random() < 1 / 3:
        return {}
    return {
        "resources_per_group": rng.randint(1, 3),
        "resource_crash_per_s": rng.choice((0.0, rng.uniform(0.05, 1.0))),
        "resource_hang_per_s": rng.choice((0.0, rng.uniform(0.05, 0.5))),
        "resource_slow_start_max_ms": rng.choice((0, rng.randint(10, 400))),
        "bad_command_probability": rng.choice((0.0, rng.uniform(0.05, 0.3))),
    }
