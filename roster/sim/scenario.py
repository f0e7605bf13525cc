"""One simulated run: a cluster created, joined, worked and faulted, then healed and checked.

Everything random comes from the world's one RNG, so `(seed, nodes, faults, duration)`
replays the same run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from actors.node import CreateSpec
from actors.settings import ProtocolSettings
from roster.sim.invariants import InvariantChecker, InvariantViolation, check_liveness
from roster.sim.options import FAULT_KINDS, SimOptions
from roster.sim.resources import BAD_COMMAND, ResourceFaults
from roster.sim.world import World

__all__ = ["FAULT_KINDS", "RunResult", "Scenario", "SimOptions", "run_seed", "sim_settings"]

SIM_HEARTBEAT_INTERVAL_MS = 100
FAULT_PHASE_FRACTION = 0.6  # faults stop here; the rest of the run is for healing (invariant 6)
SETTLE_INTERVALS = 10  # records committed this close to the end may still be on their way


def sim_settings() -> ProtocolSettings:
    return ProtocolSettings(heartbeat_interval_ms=SIM_HEARTBEAT_INTERVAL_MS, heartbeat_misses_before_regroup=5,
                            evict_lag_events=200)


@dataclass
class RunResult:
    seed: int
    ok: bool
    violation: InvariantViolation | None
    events: int
    regroups: int
    failovers: int
    false_downs: int
    detection_ms: list[int] = field(default_factory=list)
    steps: int = 0
    messages: int = 0
    serving_after_ms: int | None = None  # invariant 6: from the last heal/restart to every member serving
    log: list[str] = field(default_factory=list)
    options: SimOptions | None = None


class Scenario:
    def __init__(self, seed: int, nodes: int, faults: tuple[str, ...] | SimOptions, duration_ms: int,
                 settings: ProtocolSettings | None = None, share_folds: bool = False) -> None:
        """`faults`: the classic option mix with these fault kinds, or a whole `SimOptions`.
        `share_folds`: replicas share the states of identical prefixes (`roster.sim.shared_folds`)."""
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.options = faults if isinstance(faults, SimOptions) else SimOptions.classic(tuple(faults))
        self.seed, self.faults, self.duration_ms = seed, self.options.faults, duration_ms
        self.settings = settings or sim_settings()
        self.world = World(seed=seed, settings=self.settings, share_folds=share_folds)
        self.ids = [f"n{i}" for i in range(1, nodes + 1)]
        self.crashed_at: dict[str, int] = {}
        self.checker = InvariantChecker(self.world)
        self.rng = self.world.rng
        self.requests = 0
        self.down_since: dict[str, int] = {}  # crashed server -> when
        self.detection_ms: list[int] = []
        self.live_downs = 0
        self._seen_records = 0
        self.last_restart_at = 0  # the latest restart the scenario planned (invariant 6 counts from it)
        self.world.observers.append(self._watch_downs)

    # --- the story -------------------------------------------------------------------------------
    def run(self) -> RunResult:
        w = self.world
        for n in self.ids:
            w.add_server(n)
        self._host_faults()
        w.start_quorum()
        w.start_server(self.ids[0], create=CreateSpec("sim-cluster", f"sim-{self.seed}", tuple(self.ids)))
        for n in self.ids[1:]:
            w.schedule(self.rng.randint(self.options.start_spread_min_ms, self.options.start_spread_max_ms),
                       lambda n=n: w.start_server(n))
        heal_at = int(self.duration_ms * FAULT_PHASE_FRACTION)
        self._plan_workload(heal_at)
        if self.faults:
            self._plan_faults(heal_at)
        if self.options.pause_gap_ms:
            self._plan_pauses(heal_at)
        w.schedule(heal_at, self._heal)
        violation = None
        settle_ms = SETTLE_INTERVALS * self.settings.interval_ms
        try:
            w.run_until(self.duration_ms - settle_ms)
            settled_seq = len(w.qdisk.records)
            w.run_until(self.duration_ms)
            # Every member is expected back: nodes that left restart, evicted ones are added again.
            self.checker.check_serving_reached()
            check_liveness(w, set(self.ids), settled_seq)
        except InvariantViolation as exc:
            violation = exc
        except Exception as exc:  # noqa: BLE001 - a core that raises is a bug: report it like a violation
            detail = f"a core raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            violation = InvariantViolation(0, detail, w.elapsed, w.steps)
        return self._result(violation)

    def _plan_workload(self, until_ms: int) -> None:
        w = self.world
        if self.options.has_resources:
            o = self.options
            w.resources.faults = ResourceFaults(o.resource_crash_per_s, o.resource_hang_per_s,
                                                o.resource_slow_start_max_ms)
            w.schedule(800, lambda: self._admin("group-apply", groups=self._declared_groups()))
        for i in range(self.options.groups if not self.options.has_resources else 0):
            owners = self.rng.sample(self.ids, k=min(2, len(self.ids)))
            w.schedule(800 + 50 * i, lambda i=i, o=owners: self._admin("group-create", group=f"g{i}",
                                                                     preferred_owners=o, failback=i == 0))
        t = 1500
        while t < until_ms:
            w.schedule(t, self._random_admin)
            t += self.rng.randint(self.options.admin_gap_ms // 2, self.options.admin_gap_ms * 2)

    def _declared_groups(self) -> dict:
        """What `roster apply` would send: groups of `process` resources, some depending on
        the one before, some with a command that does not exist, policies drawn."""
        rng, o, out = self.rng, self.options, {}
        for i in range(o.groups):
            resources = []
            for j in range(o.resources_per_group):
                bad = rng.random() < o.bad_command_probability
                resources.append({
                    "name": f"r{j}", "type": "process", "params": {"argv": [BAD_COMMAND if bad else "sim-service"]},
                    "depends_on": [f"r{j - 1}"] if j and rng.random() < 0.5 else [],
                    "health": {"interval_ms": rng.randint(50, 500), "timeout_ms": rng.randint(20, 200)},
                    "restart": {"threshold": rng.randint(0, 3), "period_ms": rng.randint(1000, 10000),
                                "delay_ms": rng.randint(0, 200)},
                    "start_timeout_ms": rng.randint(100, 1000), "stop_timeout_ms": rng.randint(50, 500),
                })
            out[f"g{i}"] = {"preferred_owners": rng.sample(self.ids, k=min(2, len(self.ids))), "failback": i == 0,
                            "failover": {"threshold": rng.randint(0, 4), "period_ms": rng.randint(2000, 20000)},
                            "resources": resources}
        return out

    def _admin(self, op: str, **args) -> None:
        self.requests += 1
        up = [n for n in self.ids if self.world.servers[n].up] or self.ids
        self.world.admin(self.rng.choice(up), op, f"r{self.requests}", **args)

    def _random_admin(self) -> None:
        n = self.rng.choice(self.ids)
        roll = self.rng.random()
        if roll < 0.3:
            self._admin("pause", node=n, drain=self.rng.random() < 0.5)
        elif roll < 0.6:
            self._admin("resume", node=n)
        elif roll < 0.85:
            self._admin("group-move", group=f"g{self.rng.randrange(self.options.groups)}", node=n)
        elif n != self.ids[0]:  # a planned leave, then the service starts again later (S19, S21)
            self._admin("leave", node=n)
            back_at = self.world.elapsed + self.rng.randint(500, 3000)
            self.last_restart_at = max(self.last_restart_at, back_at)
            self.world.schedule(back_at, lambda n=n: self._restart_if_down(n))

    def _restart_if_down(self, n: str) -> None:
        s = self.world.servers[n]
        if not s.up and n not in self.crashed_at:
            self.world.start_server(n)

    # --- faults ----------------------------------------------------------------------------------
    def _host_faults(self) -> None:
        """Late timers and clock drift, for the whole run (drawn only when on: the classic mix
        leaves the world's RNG where it was, so old seeds replay exactly)."""
        w, o = self.world, self.options
        w.timer_late_max_ms = o.timer_late_max_ms
        if o.clock_drift_ppm:
            e = o.clock_drift_ppm / 1_000_000
            # Each clock near an edge of the bound, fast or slow: the worst pairs are in every run.
            for s in w.servers.values():
                s.clock_rate = 1 + e * self.rng.choice((-1, 1)) * self.rng.uniform(0.5, 1.0)
            w.quorum_clock_rate = 1 + e * self.rng.choice((-1, 1)) * self.rng.uniform(0.5, 1.0)

    def _plan_pauses(self, until_ms: int) -> None:
        """Process pauses (GC, SIGSTOP): one server's cores get nothing for a while, then go on
        with the beliefs they had; what arrived meanwhile is delivered in order."""
        w, det = self.world, self.settings.detection_ms
        t = 1500
        while t < until_ms:
            length = self.rng.randint(1, max(1, int(det * self.options.pause_max_detections)))
            n = self.rng.choice(self.ids)
            w.schedule(t, lambda n=n, length=length: w.pause_server(n, w.elapsed + length))
            t += self.rng.randint(self.options.pause_gap_ms // 2, self.options.pause_gap_ms * 2)

    def _plan_faults(self, until_ms: int) -> None:
        t = 1500
        while t < until_ms:
            kind = self.rng.choice([k for k in self.faults if k != "torn"] or ["crash"])
            self.world.schedule(t, lambda k=kind: self._inject(k))
            t += self.rng.randint(self.options.fault_gap_min_ms, self.options.fault_gap_max_ms)

    def _inject(self, kind: str) -> None:
        w, rng, det, o = self.world, self.rng, self.settings.detection_ms, self.options
        back_at = w.elapsed + rng.randint(int(det * o.fault_duration_min_detections),
                                          int(det * o.fault_duration_max_detections))
        if kind == "crash":
            if rng.random() < o.quorum_crash_probability and w.quorum_up:
                w.crash_quorum()
                w.schedule(back_at, w.start_quorum)
                return
            up = [n for n in self.ids if w.servers[n].up]
            if not up:
                return
            n = rng.choice(up)
            w.crash_server(n, torn="torn" in self.faults and rng.random() < o.torn_write_probability)
            self.crashed_at[n] = w.elapsed
            self.down_since.setdefault(n, w.elapsed)
            w.schedule(back_at, lambda n=n: self._restart_crashed(n))
        elif kind == "partition":
            everyone = [*self.ids, "quorum"]
            side = set(rng.sample(everyone, k=rng.randint(1, max(1, len(everyone) // 2))))
            w.net.partition(side, set(everyone) - side, one_way=rng.random() < o.one_way_partition_probability)
            w.schedule(back_at, lambda: w.net.cond.blocked.clear())
        elif kind == "loss":
            w.net.cond.loss = rng.uniform(o.loss_min, o.loss_max)
            w.schedule(back_at, lambda: setattr(w.net.cond, "loss", 0.0))
        elif kind == "delay":
            w.net.cond.jitter_ms = rng.randint(1, max(1, int(self.settings.interval_ms * o.jitter_max_intervals)))
            w.schedule(back_at, lambda: setattr(w.net.cond, "jitter_ms", 1))
        elif kind == "dup":
            w.net.cond.dup = rng.uniform(o.dup_min, o.dup_max)
            w.schedule(back_at, lambda: setattr(w.net.cond, "dup", 0.0))

    def _watch_downs(self, world: World, addr: str, msg: object) -> None:
        """Failure-detection time: crash → NodeDown; a NodeDown of a live server is a false suspicion
        (or a partition doing its job: the simulator cannot tell which, so both are counted)."""
        records = world.qdisk.records
        for r in records[self._seen_records:]:
            if r.event.type == "NodeDown" and r.node is not None:
                if r.node in self.down_since:
                    self.detection_ms.append(world.elapsed - self.down_since[r.node])
                else:
                    self.live_downs += 1
        self._seen_records = len(records)

    def _restart_crashed(self, n: str) -> None:
        self.crashed_at.pop(n, None)
        self.down_since.pop(n, None)
        if not self.world.servers[n].up:
            self.world.start_server(n)

    def _heal(self) -> None:
        w = self.world
        w.net.heal()
        w.net.cond.jitter_ms = 1
        w.resources.heal()
        if not w.quorum_up:
            w.start_quorum()
        state = w.quorum_state()
        for n in self.ids:
            if n in state.config.evicted and not state.config.is_member(n):
                self._admin("add-node", node=n)  # S20: an evicted node returns only when added again
        restart_at = w.elapsed + 2 * self.settings.interval_ms
        for n in self.ids:
            w.schedule(restart_at, lambda n=n: self._restart_crashed(n))
        # Invariant 6 with a bound: counted from the last heal or planned restart, whichever is later.
        self.checker.expect_serving(max(restart_at, self.last_restart_at), set(self.ids))

    # --- the report ----------------------------------------------------------------------------------
    def _result(self, violation: InvariantViolation | None) -> RunResult:
        records = self.world.qdisk.records
        regroups = sum(1 for r in records if r.event.type == "Regrouped")
        failovers = sum(1 for r in records if r.event.type == "GroupMoved" and r.event.reason == "failover")
        return RunResult(seed=self.seed, ok=violation is None, violation=violation, events=len(records),
                         regroups=regroups, failovers=failovers, false_downs=self.live_downs,
                         detection_ms=list(self.detection_ms),
                         steps=self.world.steps, messages=self.world.messages, log=self.world.log_lines,
                         options=self.options, serving_after_ms=self._serving_after())

    def _serving_after(self) -> int | None:
        c = self.checker
        return None if c.serving_at is None or c.serving_from is None else c.serving_at - c.serving_from

    def write_logs(self, out: Path) -> None:
        """The run's quorum log and every replica, in the real log format (for `roster replay`)."""
        from events.log import EventLog

        targets = [(out / "quorum", self.world.qdisk.records)]
        targets += [(out / "nodes" / s.node_id, s.replica) for s in self.world.servers.values()]
        for path, records in targets:
            path.mkdir(parents=True, exist_ok=True)
            with EventLog.open(path, fsync=False) as log:
                if records and log.head_seq == 0:
                    log.append_records(list(records))


def run_seed(seed: int, nodes: int, faults: tuple[str, ...] | SimOptions, duration_ms: int,
             out: Path | None = None) -> RunResult:
    scenario = Scenario(seed, nodes, faults, duration_ms)
    result = scenario.run()
    if out is not None:
        scenario.write_logs(out)
    return result
