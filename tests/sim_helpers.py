"""Small helpers for story tests on the deterministic simulator (roster.sim.world).

Every world built here has an `InvariantChecker` attached, so invariants 1–5 are checked
after every simulated step; a violation raises `InvariantViolation` out of `run_until`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Iterable

from actors import messages as m
from actors.node import CreateSpec
from actors.settings import ProtocolSettings
from events.record import Record
from projections.state import ClusterState
from roster.sim.invariants import InvariantChecker
from roster.sim.world import World

CLUSTER_ID = "sim-cluster"  # World's default cluster id
DEFAULT_SECRET = b"cluster-secret"  # World.add_server's default secret


def fast_settings(**overrides: int) -> ProtocolSettings:
    """interval 100 ms x 5 misses: detection 500 ms, regroup timeout 100 ms, lease 300 ms."""
    base: dict[str, int] = {"heartbeat_interval_ms": 100, "heartbeat_misses_before_regroup": 5}
    base.update(overrides)
    return ProtocolSettings(**base)


@dataclass
class Sim:
    world: World
    checker: InvariantChecker
    ids: list[str]
    requests: itertools.count = field(default_factory=lambda: itertools.count(1))

    # --- time -------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.world.elapsed

    def run_for(self, ms: int) -> None:
        self.world.run_until(self.world.elapsed + ms)

    def until(self, predicate: Callable[[], bool], limit_ms: int, what: str = "") -> int:
        return run_until_true(self.world, predicate, limit_ms, what=what)

    # --- views ------------------------------------------------------------------------------
    def state(self) -> ClusterState:
        return self.world.quorum_state()

    def node_state(self, node_id: str) -> str | None:
        return node_state(self.world, node_id)

    def leader(self) -> str | None:
        return leader_of(self.world)

    def events(self, type_name: str, node: str | None = None, since_seq: int = 0) -> list[Record]:
        return events_of(self.world, type_name, node=node, since_seq=since_seq)

    def role(self, node_id: str) -> str | None:
        s = self.world.servers[node_id]
        return s.node.role if s.up and s.node is not None else None

    def running_on(self, node_id: str) -> set[str]:
        return running_on(self.world, node_id)

    def owner(self, group: str) -> str | None:
        g = self.state().membership.groups.get(group)
        return g.owner if g else None

    # --- admin ------------------------------------------------------------------------------
    def admin(self, via: str, op: str, *, limit_ms: int = 3000, **args) -> m.AdminReply:
        """Send an admin command as a client and run until its reply arrives."""
        rid = f"req-{next(self.requests)}"
        self.world.admin(via, op, rid, **args)
        self.until(lambda: rid in self.world.admin_replies, limit_ms, what=f"a reply to {op} {args}")
        return self.world.admin_replies[rid]

    def admin_ok(self, via: str, op: str, **args) -> m.AdminReply:
        reply = self.admin(via, op, **args)
        assert reply.ok, f"admin {op} {args} via {via} failed: {reply}"
        return reply


def build_sim(ids: Iterable[str] = ("n1", "n2", "n3"), *, seed: int = 1, settings: ProtocolSettings | None = None,
              secrets: dict[str, bytes] | None = None, cluster_id: str = CLUSTER_ID) -> Sim:
    """A world with these servers (not started) and the quorum started, with an InvariantChecker."""
    ids = list(ids)
    world = World(seed=seed, settings=settings or fast_settings(), cluster_id=cluster_id)
    for n in ids:
        world.add_server(n, secret=(secrets or {}).get(n, DEFAULT_SECRET))
    world.start_quorum()
    return Sim(world, InvariantChecker(world), ids)


def create_and_join(sim: Sim, *, members: Iterable[str] | None = None, creator: str | None = None,
                    joiners: Iterable[str] | None = None, stagger_ms: int = 50, name: str = "story",
                    settle_ms: int = 3000, wait: bool = True) -> None:
    """S1: start the creator with a CreateSpec (it forms, S5), then start the others (they join)."""
    members = tuple(members if members is not None else sim.ids)
    creator = creator or members[0]
    joiners = [n for n in (joiners if joiners is not None else sim.ids) if n != creator]
    w = sim.world
    w.start_server(creator, create=CreateSpec(w.cluster_id, name, members))
    for i, n in enumerate(joiners):
        w.schedule(w.elapsed + stagger_ms * (i + 1), lambda n=n: w.start_server(n))
    if wait:
        everyone = [creator, *joiners]
        sim.until(lambda: all(sim.node_state(n) == "Online" for n in everyone)
                  and all(sim.role(n) in ("leader", "follower") for n in everyone),
                  settle_ms, what=f"{everyone} Online")


# --- free functions -------------------------------------------------------------------------------
def run_until_true(world: World, predicate: Callable[[], bool], limit_ms: int, *, step_ms: int = 5,
                   what: str = "") -> int:
    """Run the world in small steps until `predicate()` holds; return the elapsed time it held.
    Fails the test if it does not hold within `limit_ms` of simulated time."""
    end = world.elapsed + limit_ms
    while True:
        if predicate():
            return world.elapsed
        if world.elapsed >= end:
            raise AssertionError(f"not true within {limit_ms} ms: {what or predicate}")
        world.run_until(min(world.elapsed + step_ms, end))


def events_of(world: World, type_name: str, node: str | None = None, since_seq: int = 0) -> list[Record]:
    return [r for r in world.qdisk.records
            if r.event.type == type_name and r.seq > since_seq and (node is None or r.node == node)]


def types_of(records: Iterable[Record]) -> list[str]:
    return [r.event.type for r in records]


def node_state(world: World, node_id: str) -> str | None:
    n = world.quorum_state().membership.nodes.get(node_id)
    return n.state if n else None


def leader_of(world: World) -> str | None:
    leaders = world.leaders()
    if not leaders:
        return None
    return max(leaders, key=lambda x: x[1])[0]


def running_on(world: World, node_id: str) -> set[str]:
    return {g for g, servers in world.running.items() if node_id in servers}


def replicas_match_quorum(world: World, ids: Iterable[str]) -> bool:
    q = [r.hash for r in world.qdisk.records]
    return all([r.hash for r in world.servers[n].replica] == q for n in ids)


class StartTimes:
    """Observer: when (elapsed ms) each group started / stopped on each server (from world.running)."""

    def __init__(self, world: World) -> None:
        self.prev: dict[str, set[str]] = {}
        self.starts: list[tuple[int, str, str]] = []  # (ms, group, server)
        self.stops: list[tuple[int, str, str]] = []
        world.observers.append(self)

    def __call__(self, world: World, addr: str, msg) -> None:
        for g, servers in world.running.items():
            before = self.prev.get(g, set())
            for s in servers - before:
                self.starts.append((world.elapsed, g, s))
            for s in before - servers:
                self.stops.append((world.elapsed, g, s))
            self.prev[g] = set(servers)

    def first_start(self, group: str, server: str, after: int = 0) -> int | None:
        times = [t for t, g, s in self.starts if g == group and s == server and t >= after]
        return min(times) if times else None

    def last_stop(self, group: str, server: str) -> int | None:
        times = [t for t, g, s in self.stops if g == group and s == server]
        return max(times) if times else None


def ts_ms(record: Record) -> int:
    """A record's commit time as elapsed simulated ms (the Quorum stamps `ts` from the sim clock)."""
    from datetime import datetime, timezone

    from roster.sim.world import EPOCH_BASE_MS

    dt = datetime.strptime(record.ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return round(dt.timestamp() * 1000) - EPOCH_BASE_MS
