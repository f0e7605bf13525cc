"""The deterministic simulator: the real cores on a virtual clock, one seeded RNG.

`World` owns servers (a Node + an ELM each, with a durable replica that survives crashes),
the Quorum (durable log + ownership), the network and the event queue. It runs the cores'
effects exactly as a shell would, and lets an observer check invariants after every step.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from actors import messages as m
from actors.effects import (Persist, PersistOwnership, Send, SetAsideReplica, SetRunDeadline, SetTimer, StartGroup,
                            StartResource, StopGroup, StopResource, StopService)
from actors.event_log_manager import EventLogManagerCore
from actors.node import CreateSpec, NodeCore, NodeIdentity
from actors.quorum import QuorumCore
from actors.settings import ProtocolSettings
from events.record import Record
from projections import state as proj
from roster.sim.network import SimNetwork
from roster.sim.resources import SimResources
from roster.sim.shared_folds import SharedFolds

EPOCH_BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: virtual time 0, for readable `ts`
CLIENT = "client"
MAX_STEPS_PER_VIRTUAL_MS = 20_000  # more than this at one instant is a storm, not a cluster at work


class Livelock(RuntimeError):
    """Messages that breed messages at one virtual instant: a protocol bug."""


@dataclass
class Server:
    node_id: str
    secret: bytes
    replica: list[Record] = field(default_factory=list)  # durable: survives crashes
    aside: list[list[Record]] = field(default_factory=list)
    node: NodeCore | None = None
    elm: EventLogManagerCore | None = None
    up: bool = False
    incarnation: int = 0  # bumps on every (re)start: stale timers and messages are ignored
    paused_until: int = 0  # a process pause: nothing reaches its cores before this (global ms)
    clock_rate: float = 1.0  # its clock runs at this rate against the world's (drift)
    watchdog_stopped: set[str] = field(default_factory=set)  # groups stopped while it was paused


@dataclass
class QuorumDisk:
    records: list[Record] = field(default_factory=list)
    epoch: int = 0
    owner: str | None = None


class World:
    def __init__(self, *, seed: int, settings: ProtocolSettings, cluster_id: str = "sim-cluster",
                 quorum_secret: bytes = b"cluster-secret", share_folds: bool = False) -> None:
        self.quorum_secret = quorum_secret
        # Every replica folds for itself (what invariant 3 compares), unless a benchmark at
        # scale asks the replicas to share the states of identical prefixes.
        self.folds: proj.Folds = SharedFolds() if share_folds else proj.IN_PLACE
        self.seed = seed
        self.rng = random.Random(seed)
        self.settings = settings
        self.cluster_id = cluster_id
        self.now = EPOCH_BASE_MS  # absolute ms handed to the cores; `elapsed` is the run's own clock
        self.net = SimNetwork(self.rng)
        self.servers: dict[str, Server] = {}
        self.qdisk = QuorumDisk()
        self.quorum: QuorumCore | None = None
        self.quorum_up = False
        self._queue: list[tuple[int, int, str, Any]] = []
        self._counter = 0
        self._steps_this_ms = 0
        self._timers: dict[tuple[str, str], int] = {}
        self.running: dict[str, set[str]] = {}  # group -> servers running it right now
        self.steps = 0
        self.messages = 0
        self.observers: list[Callable[[World, str, Any], None]] = []
        self.admin_replies: dict[str, m.AdminReply] = {}
        self.resources = SimResources(self, self.rng)  # what runs where, in simulated real time
        # Reply accounting (invariant 2): every command a client sent, and every answer the
        # cluster sent to a client (as sent: a reply the network then loses was still given).
        self.admin_ops: dict[str, str] = {}
        self.replies_sent: list[m.AdminReply] = []
        self.log_lines: list[str] = []
        self.timer_late_max_ms = 0  # every timer fires late by a random 0..this many ms
        self.quorum_clock_rate = 1.0
        self.pauses = 0
        # What may have changed since the invariant checker last looked (its one consumer, so
        # it checks per step only what a step can touch): the servers whose cores, replica or
        # processes a step touched (ordered: a dict), or None after a scheduled call, which may
        # touch anything; and whether any group or resource started or stopped anywhere.
        self._changed: dict[str, None] | None = None
        self.placement_changed = True
        self._fired: dict[str, m.TimerFired] = {}
        self._server_at: dict[str, Server] = {}  # node:x and elm:x -> server x (the hot paths look up by address)

    # --- setup ------------------------------------------------------------------------------
    def add_server(self, node_id: str, secret: bytes = b"cluster-secret") -> Server:
        s = Server(node_id, secret)
        self.servers[node_id] = s
        for addr in (m.node_addr(node_id), m.elm_addr(node_id)):
            self._server_at[addr] = s
        return s

    def start_quorum(self) -> None:
        self.quorum = QuorumCore(lease_ms=self.settings.lease_ms, secret=self.quorum_secret, records=list(self.qdisk.records),
                                 epoch=self.qdisk.epoch, owner=self.qdisk.owner, now=self.local_now(m.QUORUM))
        self.quorum_up = True

    def start_server(self, node_id: str, *, create: CreateSpec | None = None, peers: tuple[str, ...] = ()) -> None:
        s = self.servers[node_id]
        self._mark(node_id)
        s.incarnation += 1
        s.up = True
        s.paused_until, s.watchdog_stopped = 0, set()
        ident = NodeIdentity(node_id, self.cluster_id, s.secret, peers or tuple(sorted(self.servers)))
        s.elm = EventLogManagerCore(node_id, self.settings, list(s.replica), folds=self.folds)
        entropy = self.rng.getrandbits(128).to_bytes(16, "big")
        s.node = NodeCore(ident, self.settings, entropy=entropy, records=list(s.replica), create=create,
                          folds=self.folds)
        self._run_effects(m.node_addr(node_id), s.node.start(self.local_now(m.node_addr(node_id))))

    def crash_server(self, node_id: str, *, torn: bool = False) -> None:
        s = self.servers[node_id]
        if not s.up:
            return
        self._mark(node_id)
        self.placement_changed = True
        s.up, s.node, s.elm = False, None, None
        for servers in self.running.values():
            servers.discard(node_id)  # a dead process runs nothing
        self.resources.server_died(node_id)
        if torn and s.replica:
            s.replica.pop()  # the last write never reached the disk whole; open() cuts it

    # --- clocks: each server's runs at its own rate (drift), from the same origin ----------------
    def _rate(self, addr: str) -> float:
        s = self._server_at.get(addr)
        if s is not None:
            return s.clock_rate
        return self.quorum_clock_rate if addr == m.QUORUM else 1.0

    def local_now(self, addr: str) -> int:
        """The time `addr`'s clock shows now: what its core is handed as `now`."""
        rate = self._rate(addr)
        return self.now if rate == 1.0 else EPOCH_BASE_MS + int(self.elapsed * rate)

    def global_at(self, addr: str, local_ms: int) -> int:
        """When `addr`'s clock will show `local_ms` (the first world ms at which it does)."""
        rate = self._rate(addr)
        if rate == 1.0:
            return local_ms
        at = EPOCH_BASE_MS + int((local_ms - EPOCH_BASE_MS) / rate)
        while EPOCH_BASE_MS + int((at - EPOCH_BASE_MS) * rate) < local_ms:
            at += 1
        return at

    # --- a process pause (GC, SIGSTOP, a VM descheduled) ----------------------------------------
    def pause_server(self, node_id: str, until_elapsed: int) -> None:
        """Nothing reaches the server's cores until then; deliveries and timers queue up. Its
        services are stopped by a watchdog at the deadline its node last computed (the stop
        must not depend on the paused process's own event loop)."""
        s = self.servers[node_id]
        if not s.up or s.node is None or self.now < s.paused_until:
            return
        self.pauses += 1
        self._mark(node_id)
        s.paused_until = EPOCH_BASE_MS + until_elapsed
        addr = m.node_addr(node_id)
        deadline = max(s.node.contact_until, s.node.lease_until)
        incarnation = s.incarnation
        if s.node.running and deadline:
            self._push(max(self.global_at(addr, deadline), self.now), "call",
                       lambda: self._watchdog(node_id, incarnation))

    def _watchdog(self, node_id: str, incarnation: int) -> None:
        s = self.servers[node_id]
        if s.incarnation != incarnation or not s.up or s.node is None or self.now >= s.paused_until:
            return
        keep = s.node.desired_groups(self.local_now(m.node_addr(node_id)))
        for group, servers in self.running.items():
            if node_id in servers and group not in keep:
                self.placement_changed = True
                servers.discard(node_id)
                s.watchdog_stopped.add(group)
                self.log_lines.append(f"{self.elapsed}ms {node_id} watchdog stopped {group} (paused)")

    def _paused(self, addr: str) -> Server | None:
        s = self._server_at.get(addr)
        return s if s is not None and self.now < s.paused_until else None

    def crash_quorum(self) -> None:
        self.quorum_up, self.quorum = False, None

    # --- what changed, for the invariant checker ---------------------------------------------------
    def _mark(self, node_id: str) -> None:
        if self._changed is not None:
            self._changed[node_id] = None

    def take_changes(self) -> list[str] | None:
        """The servers touched since the last call (None: any may have been), and forget them."""
        changed, self._changed = self._changed, {}
        return None if changed is None else list(changed)

    # --- the event loop ------------------------------------------------------------------------
    def _push(self, at: int, kind: str, payload: Any) -> None:
        self._counter += 1
        heapq.heappush(self._queue, (at, self._counter, kind, payload))

    @property
    def elapsed(self) -> int:
        return self.now - EPOCH_BASE_MS

    def schedule(self, at_elapsed: int, fn: Callable[[], None]) -> None:
        self._push(EPOCH_BASE_MS + at_elapsed, "call", fn)

    def send(self, src: str, dst: str, msg: m.Message) -> None:
        self.messages += 1
        if dst == CLIENT and isinstance(msg, m.AdminReply):
            self.replies_sent.append(msg)
        for delay in self.net.deliveries(src, dst):
            self._push(self.now + delay, "msg", (src, dst, msg, self._incarnation_of(dst)))

    def _incarnation_of(self, addr: str) -> int:
        s = self._server_at.get(addr)
        return s.incarnation if s is not None else 0

    def run_until(self, elapsed_end: int) -> None:
        t_end = EPOCH_BASE_MS + elapsed_end
        while self._queue and self._queue[0][0] <= t_end:
            at, _, kind, payload = heapq.heappop(self._queue)
            if at == self.now:
                self._steps_this_ms += 1
                if self._steps_this_ms > MAX_STEPS_PER_VIRTUAL_MS:
                    raise Livelock(f"more than {MAX_STEPS_PER_VIRTUAL_MS} steps at {self.elapsed} ms: a message storm")
            else:
                self._steps_this_ms = 0
            self.now = at
            self.steps += 1
            if kind == "call":
                self._changed = None
                payload()
                self._observe("call", None)
            elif kind == "timer":
                self._fire_timer(*payload)
            else:
                self._deliver(*payload)
        self.now = max(self.now, t_end)

    def _fire_timer(self, addr: str, key: str, gen: int) -> None:
        if self._timers.get((addr, key)) != gen:
            return
        paused = self._paused(addr)
        if paused is not None:  # fires when the process runs again
            self._push(paused.paused_until, "timer", (addr, key, gen))
            return
        fired = self._fired.get(key)
        if fired is None:  # (a message is immutable: one per key serves every timer)
            fired = self._fired[key] = m.TimerFired(key=key)
        self._dispatch(addr, addr, fired)

    def _deliver(self, src: str, dst: str, msg: m.Message, incarnation: int) -> None:
        if incarnation != self._incarnation_of(dst):
            return  # sent to a process that has since died
        if dst == CLIENT:
            if isinstance(msg, m.AdminReply):
                self.admin_replies[msg.request_id] = msg
            return
        paused = self._paused(dst)
        if paused is not None:  # queued in the paused process, in arrival order
            self._push(paused.paused_until, "msg", (src, dst, msg, incarnation))
            return
        self._dispatch(dst, src, msg)

    def _core(self, addr: str) -> Any:
        if addr == m.QUORUM:
            return self.quorum if self.quorum_up else None
        s = self._server_at.get(addr)
        if s is None or not s.up:
            return None
        return s.node if addr.startswith("node:") else s.elm

    def _dispatch(self, addr: str, sender: str, msg: m.Message) -> None:
        core = self._core(addr)
        if core is None:
            return
        if addr != m.QUORUM:
            self._mark(self._server_at[addr].node_id)
        if addr.startswith("node:"):
            self._report_watchdog_stops(core, addr)
        effects = core.step(msg, self.local_now(addr), sender)
        self._run_effects(addr, effects)
        self._observe(addr, msg)

    def _report_watchdog_stops(self, core: NodeCore, addr: str) -> None:
        """The shell tells a resumed node which of its services the watchdog stopped, so it
        starts them again only if it still may."""
        s = self._server_at[addr]
        if s.watchdog_stopped:
            for g in s.watchdog_stopped:
                run = core.runner.groups.get(g)
                # A group of no resources was only the group-level service: forget it, so the
                # runner starts it again (StartGroup) if it still may run here. One with
                # resources hears of each kill from its resource host.
                if run is not None and not run.resources:
                    del core.runner.groups[g]
            core.running -= s.watchdog_stopped
            s.watchdog_stopped = set()

    def _observe(self, addr: str, msg: Any) -> None:
        for obs in self.observers:
            obs(self, addr, msg)

    # --- effects, as a shell carries them out ------------------------------------------------------
    def _run_effects(self, addr: str, effects: list) -> None:
        for e in effects:
            _EFFECTS[type(e)](self, addr, e)

    def _send_effect(self, addr: str, e: Send) -> None:
        self.send(addr, e.to, e.msg)

    def _set_timer(self, addr: str, e: SetTimer) -> None:
        gen = self._timers.get((addr, e.key), 0) + 1
        self._timers[(addr, e.key)] = gen
        at = max(self.global_at(addr, e.at_ms), self.now)
        if self.timer_late_max_ms:  # a loaded host: the timer fires a little late
            at += self.rng.randint(0, self.timer_late_max_ms)
        self._push(at, "timer", (addr, e.key, gen))

    def _persist_effect(self, addr: str, e: Persist) -> None:
        self._persist(addr, e.records)

    def _persist_ownership(self, addr: str, e: PersistOwnership) -> None:
        self.qdisk.epoch, self.qdisk.owner = e.epoch, e.owner

    def _set_aside(self, addr: str, e: SetAsideReplica) -> None:
        s = self._server_at[addr]
        s.aside.append(s.replica)
        s.replica = []

    def _start_group(self, addr: str, e: StartGroup) -> None:
        self.placement_changed = True
        self.running.setdefault(e.group, set()).add(self._server_at[addr].node_id)

    def _stop_group(self, addr: str, e: StopGroup) -> None:
        self.placement_changed = True
        self.running.setdefault(e.group, set()).discard(self._server_at[addr].node_id)

    def _resource_effect(self, addr: str, e: StartResource | StopResource | SetRunDeadline) -> None:
        self.resources.execute(self._server_at[addr].node_id, e)

    def _stop_service_effect(self, addr: str, e: StopService) -> None:
        self._stop_service(self._server_at[addr].node_id, e.reason)

    def _persist(self, addr: str, records: tuple[Record, ...]) -> None:
        if addr == m.QUORUM:
            self.qdisk.records.extend(records)
            return
        s = self._server_at[addr]
        for r in records:
            if r.seq == len(s.replica) + 1:
                s.replica.append(r)

    def _stop_service(self, node_id: str, reason: str) -> None:
        s = self.servers[node_id]
        self.log_lines.append(f"{self.elapsed}ms {node_id} stopped: {reason}")
        # The process keeps running until the shell stops it; in the sim it stops now.
        self._push(self.now, "call", lambda: self.crash_server(node_id))

    def deliver_local(self, node_id: str, msg: m.Message) -> None:
        """A message from the server's own resource host to its node core (no network)."""
        s = self.servers.get(node_id)
        if s is None or not s.up:
            return
        if self.now < s.paused_until:  # a paused process reads its host's reports when it runs again
            self._push(s.paused_until, "msg", (f"host:{node_id}", m.node_addr(node_id), msg, s.incarnation))
            return
        self._dispatch(m.node_addr(node_id), f"host:{node_id}", msg)

    # --- admin, as a client would ---------------------------------------------------------------------
    def admin(self, via: str, op: str, request_id: str, **args: Any) -> None:
        cmd = m.AdminCommand(op=op, args=args, request_id=request_id, reply_to=CLIENT)  # type: ignore[arg-type]
        self.admin_ops[request_id] = op
        self.send(CLIENT, m.node_addr(via), cmd)

    # --- views for checks and reports ------------------------------------------------------------------
    def leaders(self) -> list[tuple[str, int]]:
        return [(s.node_id, s.node.epoch) for s in self.servers.values()
                if s.up and s.node is not None and s.node.role == "leader"]

    def quorum_state(self):
        from projections.state import ClusterState

        return proj.fold(ClusterState(), self.qdisk.records)


# One handler per effect type (a type without one is a bug: KeyError).
_EFFECTS: dict[type, Callable[[World, str, Any], None]] = {
    Send: World._send_effect,
    SetTimer: World._set_timer,
    Persist: World._persist_effect,
    PersistOwnership: World._persist_ownership,
    SetAsideReplica: World._set_aside,
    StartGroup: World._start_group,
    StopGroup: World._stop_group,
    StartResource: World._resource_effect,
    StopResource: World._resource_effect,
    SetRunDeadline: World._resource_effect,
    StopService: World._stop_service_effect,
}
