"""Resources in the simulated world: what a resource host does, with its faults.

A resource "runs" on a server from the moment its start begins until its stop completes
(or the server dies, or the watchdog's run deadline passes): `running[(group, resource)]`
is that set of servers in simulated real time, which invariant 4 checks after every step.
Faults, drawn from the run's options: a running resource crashes (it exits), hangs (its
health probe times out while the process lives on), starts slowly, or never starts (its
command does not exist: argv[0] "false").
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from actors import messages as m
from actors.effects import SetRunDeadline, StartResource, StopResource

BAD_COMMAND = "false"  # argv[0] of a resource that can never start
START_MS = (5, 40)  # a normal start takes this long
STOP_MS = (1, 20)


@dataclass
class ResourceFaults:
    crash_per_s: float = 0.0  # each running resource exits with this rate
    hang_per_s: float = 0.0  # its health probe times out (the process lives on) with this rate
    slow_start_max_ms: int = 0  # a start may take up to this much longer


@dataclass
class Instance:
    server: str
    group: str
    resource: str
    attempt: int
    gen: int  # which start this is: a stale event for an older instance is ignored
    online: bool = False
    failure_reported: bool = False


@dataclass
class SimResources:
    world: Any  # the World (typed loosely: the world imports this module)
    rng: random.Random
    faults: ResourceFaults = field(default_factory=ResourceFaults)
    running: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (group, resource) -> servers
    instances: dict[tuple[str, str, str], Instance] = field(default_factory=dict)  # (server, group, res)
    deadlines: dict[str, int] = field(default_factory=dict)  # server -> run deadline (its clock)
    gen: int = 0
    starts: int = 0
    kills_by_deadline: int = 0
    policy: Any = None  # a PolicyCheck (roster/sim/policy_check.py), told of failures and restarts

    # --- effects from a node core ---------------------------------------------------------------
    def execute(self, server: str, effect: object) -> None:
        if isinstance(effect, StartResource):
            self._start(server, effect)
        elif isinstance(effect, StopResource):
            self._stop(server, effect.group, effect.resource)
        elif isinstance(effect, SetRunDeadline):
            self.deadlines[server] = effect.at_ms
            self.world.schedule(max(effect.at_ms - self.world.now, 0) + self.world.elapsed,
                                lambda: self._deadline_check(server, effect.at_ms))

    def _start(self, server: str, e: StartResource) -> None:
        key = (server, e.group, e.spec.name)
        if key in self.instances:  # (a core never starts what runs: that is a bug to see)
            raise AssertionError(f"{e.group}/{e.spec.name} started twice on {server}")
        if self.policy is not None:
            r = e.spec.restart
            self.policy.resource_started(key, e.attempt, r.threshold, r.period_ms,
                                         self.world.local_now(m.node_addr(server)))
        self.gen += 1
        self.starts += 1
        inst = Instance(server, e.group, e.spec.name, e.attempt, self.gen)
        self.instances[key] = inst
        self.world.placement_changed = True
        self.running.setdefault((e.group, e.spec.name), set()).add(server)
        argv = e.spec.params.get("argv") or [""]
        delay = self.rng.randint(*START_MS) + (self.rng.randint(0, self.faults.slow_start_max_ms)
                                              if self.faults.slow_start_max_ms else 0)
        if argv[0] == BAD_COMMAND:
            self._later(delay, inst, lambda: self._exit(inst, "start", "command not found", 127))
        elif delay > e.spec.start_timeout_ms:
            self._later(e.spec.start_timeout_ms, inst, lambda: self._report_probe(inst, "start", "start timed out"))
        else:
            self._later(delay, inst, lambda: self._came_up(inst, e))

    def _came_up(self, inst: Instance, e: StartResource) -> None:
        inst.online = True
        port = e.spec.params.get("port") if e.spec.type == "process" else None
        endpoint = f"{inst.server}:{port}" if port else None  # as the real host reports it: where it listens
        self._tell(inst.server, m.ResourceStarted(group=inst.group, resource=inst.resource, attempt=inst.attempt,
                                                  endpoint=endpoint))
        self._plan_faults(inst, e.spec.health.interval_ms, e.spec.health.timeout_ms)

    def _plan_faults(self, inst: Instance, interval_ms: int, timeout_ms: int) -> None:
        # A planned fault happens only if faults are still on when its time comes (the heal
        # turns them off: `heal`).
        if self.faults.crash_per_s > 0:
            at = int(self.rng.expovariate(self.faults.crash_per_s) * 1000) + 1
            self._later(at, inst, lambda: self.faults.crash_per_s > 0 and self._exit(inst, "run", "exited", -9))
        if self.faults.hang_per_s > 0:
            at = int(self.rng.expovariate(self.faults.hang_per_s) * 1000) + interval_ms + timeout_ms
            self._later(at, inst, lambda: self.faults.hang_per_s > 0
                        and self._report_probe(inst, "probe", "health check timed out"))

    def heal(self) -> None:
        """No more crashes or hangs (slow starts stay: they only delay). A resource whose
        command does not exist stays broken: that is its configuration, not a fault."""
        self.faults = ResourceFaults(0.0, 0.0, self.faults.slow_start_max_ms)

    def kill(self, group: str, resource: str) -> bool:
        """Kill -9 the running instance of a resource, wherever it runs (a test's fault)."""
        for inst in list(self.instances.values()):
            if (inst.group, inst.resource) == (group, resource) and inst.online:
                self._exit(inst, "run", "killed", -9)
                return True
        return False

    def _exit(self, inst: Instance, phase: str, reason: str, code: int) -> None:
        """The process is gone (it exited); the host tells the node."""
        self._failed(inst)
        self._gone(inst)
        self._tell(inst.server, m.ResourceFailed(group=inst.group, resource=inst.resource, attempt=inst.attempt,
                                                 phase=phase, reason=reason, exit_code=code))  # type: ignore[arg-type]

    def _report_probe(self, inst: Instance, phase: str, reason: str) -> None:
        """The process lives on, but does not answer: the node must stop it."""
        self._failed(inst)
        self._tell(inst.server, m.ResourceFailed(group=inst.group, resource=inst.resource, attempt=inst.attempt,
                                                 phase=phase, reason=reason))  # type: ignore[arg-type]

    def _failed(self, inst: Instance) -> None:
        """Tell the policy check of a failure the core will count: one per instance (a hung one
        may also exit later), and not one of a resource the core is already stopping (the
        watchdog's kill of what it was told to stop, say)."""
        if self.policy is None or inst.failure_reported:
            return
        inst.failure_reported = True
        core = self.world._core(m.node_addr(inst.server))
        run = core.runner.groups.get(inst.group) if core is not None else None
        res = run.resources.get(inst.resource) if run is not None else None
        if res is not None and res.attempt == inst.attempt and res.phase in ("starting", "online"):
            key = (inst.server, inst.group, inst.resource)
            self.policy.resource_failed(key, self.world.local_now(m.node_addr(inst.server)))

    def _stop(self, server: str, group: str, resource: str) -> None:
        inst = self.instances.get((server, group, resource))
        if inst is None:  # already gone (it exited, or the watchdog killed it): confirm at once
            self._later_any(1, lambda: self._tell(server, m.ResourceStopped(group=group, resource=resource)))
            return
        # Answered even if it dies meanwhile (a crash, the watchdog): a stop is always confirmed,
        # as the real host's is (it reports the stop once the process group is gone).
        self._later_any(self.rng.randint(*STOP_MS), lambda: self._stopped(inst))

    def _stopped(self, inst: Instance) -> None:
        self._gone(inst)
        self._tell(inst.server, m.ResourceStopped(group=inst.group, resource=inst.resource))

    def _deadline_check(self, server: str, at_ms: int) -> None:
        """The watchdog beside the services: past the run deadline without renewal, it kills them."""
        if self.deadlines.get(server) != at_ms or self.world.now < at_ms:
            return
        for inst in [i for i in self.instances.values() if i.server == server]:
            self.kills_by_deadline += 1
            self._exit(inst, "run", "killed by the watchdog: the run deadline passed", -9)

    def ever_had(self, group: str) -> bool:
        return any(g == group for g, _ in self.running)

    # --- the server itself ---------------------------------------------------------------------------
    def server_died(self, server: str) -> None:
        """A crashed server runs nothing (its resources die with its node actor)."""
        for inst in [i for i in self.instances.values() if i.server == server]:
            self._gone(inst)
        self.deadlines.pop(server, None)

    # --- plumbing ---------------------------------------------------------------------------------------
    def _gone(self, inst: Instance) -> None:
        key = (inst.server, inst.group, inst.resource)
        if self.instances.get(key) is inst:
            del self.instances[key]
            self.world.placement_changed = True
            self.running.get((inst.group, inst.resource), set()).discard(inst.server)

    def _later(self, delay_ms: int, inst: Instance, fn) -> None:
        """Run `fn` later if this instance is still the one there (not stopped or replaced)."""
        key = (inst.server, inst.group, inst.resource)
        self._later_any(delay_ms, lambda: fn() if self.instances.get(key) is inst else None)

    def _later_any(self, delay_ms: int, fn) -> None:
        self.world.schedule(self.world.elapsed + delay_ms, fn)

    def _tell(self, server: str, msg: m.Message) -> None:
        self.world.deliver_local(server, msg)
