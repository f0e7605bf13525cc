"""DESIGN §4 invariants, checked by the simulator after every step.

1. At most one node acts as leader per epoch; epochs only grow.
2. Every replica is a prefix of the quorum log; no acknowledged append is lost.
3. Equal seq ⇒ equal projection digest, on every node.
4. A group runs on at most one node, and its committed owner is Online or Paused.
5. A planned exit never triggers a regroup (an unexpected failure does: see the story tests).
6. Liveness: after faults heal, every live added member is Online within a bound (`check_liveness`).
"""

from __future__ import annotations

from typing import Any

from actors import messages as m
from actors.roles import leader as leader_role
from events.codec import GENESIS_HASH, check_chain
from projections import state as proj
from projections.state import ClusterState
from roster.sim.world import World


class InvariantViolation(AssertionError):
    def __init__(self, invariant: int, detail: str, at_ms: int, step: int) -> None:
        what = f"invariant {invariant} violated" if invariant else "bug"
        super().__init__(f"{what} at {at_ms} ms (step {step}): {detail}")
        self.invariant, self.detail, self.at_ms, self.step = invariant, detail, at_ms, step


class InvariantChecker:
    def __init__(self, world: World) -> None:
        self.world = world
        self.leader_of_epoch: dict[int, str] = {}
        self.max_epoch = 0
        self.node_epochs: dict[tuple[str, int], int] = {}
        self.quorum_checked = 0
        self.quorum_state = ClusterState()
        self.acked_head = 0
        self.digests: dict[int, str] = {}
        self.replica_heads: dict[str, int] = {}
        self.exit_heard: set[tuple[str, int]] = set()  # (exited node, epoch of the leader that heard it)
        self.join_attempt: dict[str, tuple[int, int]] = {}  # server -> (process incarnation, attempt)
        self.was_joining: dict[str, bool] = {}
        self.admitted: dict[str, tuple[int, int]] = {}  # member -> the join attempt that admitted it
        self.admissions_checked = 0
        world.observers.append(self)

    def fail(self, invariant: int, detail: str) -> None:
        raise InvariantViolation(invariant, detail, self.world.elapsed, self.world.steps)

    def __call__(self, world: World, addr: str, msg: Any) -> None:
        self._leaders(world)
        self._quorum_log(world)
        self._replicas(world)
        self._groups_running(world)
        self._one_admission_per_join(world)
        if isinstance(msg, m.ClusterExit) and addr.startswith("node:"):
            core = world._core(addr)
            if core is not None and core.role == "leader" and not leader_role.queued(core, msg.node, "NodeDown"):
                self.exit_heard.add((msg.node, core.epoch))  # heard before any decision that it is down

    def _leaders(self, world: World) -> None:
        for node_id, epoch in world.leaders():
            holder = self.leader_of_epoch.setdefault(epoch, node_id)
            if holder != node_id:
                self.fail(1, f"{node_id} and {holder} both lead epoch {epoch}")
        if world.qdisk.epoch < self.max_epoch:
            self.fail(1, f"quorum epoch went back from {self.max_epoch} to {world.qdisk.epoch}")
        self.max_epoch = world.qdisk.epoch
        for s in world.servers.values():
            if s.up and s.node is not None:
                key = (s.node_id, s.incarnation)
                if s.node.epoch < self.node_epochs.get(key, 0):
                    self.fail(1, f"{s.node_id}'s epoch went back to {s.node.epoch}")
                self.node_epochs[key] = s.node.epoch

    def _quorum_log(self, world: World) -> None:
        records = world.qdisk.records
        if len(records) < self.acked_head:
            self.fail(2, f"the quorum log lost acknowledged records: {len(records)} < {self.acked_head}")
        if len(records) == self.quorum_checked:
            return
        prev = records[self.quorum_checked - 1].hash if self.quorum_checked else GENESIS_HASH
        fresh = records[self.quorum_checked:]
        for r in fresh:
            if not check_chain(prev, r):
                self.fail(2, f"quorum record {r.seq} breaks the hash chain")
            prev = r.hash
        self.quorum_checked = self.acked_head = len(records)
        proj.apply_in_place(self.quorum_state, fresh)
        self._record_digest("quorum", self.quorum_state)
        self._groups_owned(fresh)
        self._no_regroup_on_exit(fresh)

    def _record_digest(self, who: str, state: ClusterState) -> None:
        digest = state.digest()
        seen = self.digests.setdefault(state.seq, digest)
        if seen != digest:
            self.fail(3, f"{who} at seq {state.seq} has digest {digest}, another replica {seen}")

    def _replicas(self, world: World) -> None:
        quorum = world.qdisk.records
        for s in world.servers.values():
            head = len(s.replica)
            if head == self.replica_heads.get(s.node_id) or head == 0:
                self.replica_heads[s.node_id] = head
                continue
            self.replica_heads[s.node_id] = head
            if head > len(quorum) or quorum[head - 1].hash != s.replica[-1].hash:
                self.fail(2, f"{s.node_id}'s replica at seq {head} is not a prefix of the quorum log")
            if s.up and s.elm is not None and s.elm.head_seq == head:
                self._record_digest(s.node_id, s.elm.state)

    def _groups_running(self, world: World) -> None:
        for group, servers in world.running.items():
            if len(servers) > 1:
                self.fail(4, f"group {group} runs on {sorted(servers)} at once")

    def _groups_owned(self, fresh: list) -> None:
        mv = self.quorum_state.membership
        for g in mv.groups.values():
            if g.owner is not None and not mv.is_full_member(g.owner):
                state = mv.nodes[g.owner].state if g.owner in mv.nodes else "unknown"
                self.fail(4, f"group {g.name} is owned by {g.owner}, which is {state} (seq {mv.seq})")

    def _no_regroup_on_exit(self, fresh: list) -> None:
        for r in fresh:
            if r.event.type == "NodeJoined":
                self.exit_heard = {(n, e) for n, e in self.exit_heard if n != r.node}
            elif r.event.type == "Regrouped":
                # A leader that heard the ClusterExit must not regroup the node out. (A new leader
                # that never heard it, because the old one failed first, sees a plain failure.)
                wrong = {n for n in r.event.down if (n, r.epoch) in self.exit_heard}
                if wrong:
                    self.fail(5, f"regroup at seq {r.seq} declared {sorted(wrong)} down after their ClusterExit")


    def _one_admission_per_join(self, world: World) -> None:
        """Invariant 5 (S13-S18): a join admits its node once. A join attempt starts when a
        process starts or a running one goes back to JOINING; a second NodeJoined for the
        same attempt while the first still stands (no NodeDown, NodeExited or NodeEvicted
        between them) is a double admission."""
        for s in world.servers.values():
            joining = s.up and s.node is not None and s.node.role == "joining"
            inc, attempt = self.join_attempt.get(s.node_id, (0, 0))
            if s.incarnation != inc:
                inc, attempt = s.incarnation, 0
            if joining and not self.was_joining.get(s.node_id, False):
                attempt += 1
            self.join_attempt[s.node_id] = (inc, attempt)
            self.was_joining[s.node_id] = joining
        records = world.qdisk.records
        for r in records[self.admissions_checked:]:
            if r.event.type in ("NodeDown", "NodeExited", "NodeEvicted"):
                self.admitted.pop(r.node, None)
            elif r.event.type == "NodeJoined" and r.node in self.join_attempt:
                if self.admitted.get(r.node) == self.join_attempt[r.node]:
                    self.fail(5, f"{r.node} admitted twice in one join attempt (NodeJoined at seq {r.seq})")
                self.admitted[r.node] = self.join_attempt[r.node]
        self.admissions_checked = len(records)


def check_liveness(world: World, expected_members: set[str], settled_seq: int) -> None:
    """Invariant 6: after healing, every live added member is Online (or Paused) and has every
    record that was committed `settled_seq` (a while before the end; later ones may be in flight)."""
    state = world.quorum_state()
    mv, cfg = state.membership, state.config
    if not world.leaders():
        raise InvariantViolation(6, "no leader after the faults healed", world.elapsed, world.steps)
    for node_id in sorted(expected_members):
        if not cfg.is_member(node_id):
            continue
        n = mv.nodes.get(node_id)
        if n is None or n.state not in ("Online", "Paused"):
            detail = f"{node_id} is {n.state if n else 'absent'} after healing ({n.reason if n else ''})"
            raise InvariantViolation(6, detail, world.elapsed, world.steps)
        s = world.servers[node_id]
        if len(s.replica) < settled_seq:
            detail = f"{node_id}'s replica is at {len(s.replica)}, behind the settled quorum log at {settled_seq}"
            raise InvariantViolation(6, detail, world.elapsed, world.steps)
