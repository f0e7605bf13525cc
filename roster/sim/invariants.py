"""DESIGN §4 invariants, checked by the simulator after every step.

1. At most one node acts as leader per epoch; epochs only grow.
2. Every replica is a prefix of the quorum log; no acknowledged append is lost. Reply
   accounting: every `ok` the cluster sent a client is in the quorum log (admin events carry
   the request id) and every definite failure is not, ever (`outcome_unknown` is neither, nor
   is a 503: "not along this path, retry with the same request id").
   A leave is exempt from the `ok` side: the node answers before its exit is logged (S21).
3. Equal seq ⇒ equal projection digest, on every replica and on the view every Node core
   decides from (compared with the quorum log's prefix of the same seq).
4. A group runs on at most one node, and its committed owner is Online or Paused.
5. A planned exit never triggers a regroup; an unexpected failure always does: a member that
   crashed and stays down is declared down (NodeDown, or queued by the leader) once one
   leader has led for `regroup_bound_ms` since the crash.
6. Liveness: after the last fault heals (and the last restart the scenario planned), every
   live added member is Online or Paused *and serving* — its core leads or follows, every
   group is placed (if any node is Online) and runs exactly on its owner — within
   SERVING_BOUND_INTERVALS heartbeat intervals (`expect_serving`), and still at the end
   (`check_liveness`).
"""

from __future__ import annotations

from typing import Any

from actors import messages as m
from actors.node_state import ACTIVE_ROLES, STOPPED_ROLES
from actors.roles import leader as leader_role
from events.codec import GENESIS_HASH, check_chain
from projections import state as proj
from projections._digest import hash_canonical
from projections.state import ClusterState
from roster.sim.policy_check import PolicyCheck
from roster.sim.resources import BAD_COMMAND
from roster.sim.world import World


OUTCOME_UNKNOWN = "outcome_unknown"  # neither ok nor failed: the client looks the request id up
# 503 (no leader reachable, leader changed, node stopped) says "not done along this path: retry
# with the same request id", never "it did not happen": a duplicated request may have reached a
# leader by another path (the retry then answers ok from the log). So it is not a definite failure.
RETRY_STATUS = 503
OK_EXEMPT_OPS = frozenset({"leave"})  # answered by the leaving node before its NodeExited commits (S21)
GONE_EVENTS = frozenset({"NodeDown", "NodeExited", "NodeEvicted"})
REGROUP_SLACK_INTERVALS = 3  # past the failover bound: a miss check, a regroup already under way
SERVING_BOUND_INTERVALS = 40  # invariant 6: serving within this many intervals of the last heal


def _digest(canonical: tuple[bytes, ...] | None) -> str | None:
    """The digest `ClusterState.digest` gives for these parts (for a report)."""
    return None if canonical is None else ":".join(hash_canonical(part) for part in canonical)


class InvariantViolation(AssertionError):
    def __init__(self, invariant: int, detail: str, at_ms: int, step: int) -> None:
        what = f"invariant {invariant} violated" if invariant else "bug"
        super().__init__(f"{what} at {at_ms} ms (step {step}): {detail}")
        self.invariant, self.detail, self.at_ms, self.step = invariant, detail, at_ms, step


def must_serve(cfg, state: str) -> bool:
    """Whether invariant 6 may demand a group be placed and running: not when an admin took it
    offline (held), not when its policy failed it (Failed: WSFC's FailoverThreshold, it stays
    offline until an admin acts), not when a resource of it can never start (its command does
    not exist: a configuration error, which the checker cannot heal)."""
    if cfg is None or cfg.held or state == "Failed":
        return False
    return not any((r.params.get("argv") or [""])[0] == BAD_COMMAND for r in cfg.resources)


def _not_served_by_owner(world: World, cfg, group: str, owner: str) -> list[str]:
    """A group with resources serves when each of them runs on its owner alone (what the
    owner's processes do, watchdog kills included); one without, between StartGroup and StopGroup."""
    resources = [r.name for r in cfg.resources] if cfg is not None else []
    if not resources:
        on = world.running.get(group, set())
        return [] if on == {owner} else [f"group {group} runs on {sorted(on)}, owner {owner}"]
    out = []
    for name in resources:
        on = world.resources.running.get((group, name), set())
        if on != {owner}:
            out.append(f"resource {group}/{name} runs on {sorted(on)}, owner {owner}")
    return out


class InvariantChecker:
    def __init__(self, world: World) -> None:
        self.world = world
        self.leader_of_epoch: dict[int, str] = {}
        self.leading: dict[str, int] = {}  # server -> the epoch its core leads, as last seen
        self.max_epoch = 0
        self.node_epochs: dict[tuple[str, int], int] = {}
        self.quorum_checked = 0
        self.quorum_state = ClusterState()
        self.acked_head = 0
        # Invariant 3: what each seq's state digests (`ClusterState.canonical`: the bytes the
        # digest hashes, compared as bytes — equal bytes, equal digests — without hashing them).
        self.canonicals: dict[int, tuple[bytes, ...]] = {}
        self.replica_heads: dict[str, int] = {}
        self.exit_heard: set[tuple[str, int]] = set()  # (exited node, epoch of the leader that heard it)
        # Reply accounting (invariant 2).
        self.logged_requests: set[str] = set()
        self.failed_requests: dict[str, str] = {}  # request id -> the error the client was told
        self.replies_checked = 0
        # Node views (invariant 3): (node, incarnation) -> the (seq, hash) last checked.
        self.view_heads: dict[tuple[str, int], tuple[int, str]] = {}
        # Unexpected failures (invariant 5): who is down since when, and who leads since when.
        s = world.settings
        self.regroup_bound_ms = s.failover_bound_ms + REGROUP_SLACK_INTERVALS * s.interval_ms
        self.up_as: dict[str, str] = {}  # server -> its core's role when last seen up
        self.crashed: dict[str, tuple[int, int]] = {}  # server -> (crash time, quorum seq then)
        self.gone_at: dict[str, int] = {}  # node -> seq of its latest NodeDown/NodeExited/NodeEvicted
        self.leader_since: dict[tuple[str, int], int] = {}
        # Liveness with a bound (invariant 6), armed by `expect_serving`.
        self.serving_from: int | None = None
        self.serving_members: set[str] = set()
        self.serving_at: int | None = None
        self.join_attempt: dict[str, tuple[int, int]] = {}  # server -> (process incarnation, attempt)
        self.was_joining: dict[str, bool] = {}
        self.admitted: dict[str, tuple[int, int]] = {}  # member -> the join attempt that admitted it
        self.admissions_checked = 0
        self.policy = PolicyCheck()  # invariant 4's policy half: restart/failover thresholds, Failed stays offline
        world.resources.policy = self.policy
        world.observers.append(self)

    def fail(self, invariant: int, detail: str) -> None:
        raise InvariantViolation(invariant, detail, self.world.elapsed, self.world.steps)

    def __call__(self, world: World, addr: str, msg: Any) -> None:
        if self.policy.violations:
            self.fail(4, self.policy.violations[0])
        # Per step only the servers it touched (the world says which): what did not change
        # was checked when it last did. Time-bound checks (5, 6) run every step.
        changed = world.take_changes()
        servers = list(world.servers.values()) if changed is None else [world.servers[n] for n in changed]
        self._leaders(world, servers)
        self._quorum_log(world)
        self._replicas(world, servers)
        if world.placement_changed:
            world.placement_changed = False
            self._groups_running(world)
        self._replies(world)
        self._node_views(world, servers)
        self._failures_regroup(world, servers)
        self._serving(world)
        self._one_admission_per_join(world, servers)
        if isinstance(msg, m.ClusterExit) and addr.startswith("node:"):
            core = world._core(addr)
            if core is not None and core.role == "leader" and not leader_role.queued(core, msg.node, "NodeDown"):
                self.exit_heard.add((msg.node, core.epoch))  # heard before any decision that it is down

    def _leaders(self, world: World, servers: list) -> None:
        for s in servers:
            if not (s.up and s.node is not None):
                self.leading.pop(s.node_id, None)
                continue
            key = (s.node_id, s.incarnation)
            if s.node.epoch < self.node_epochs.get(key, 0):
                self.fail(1, f"{s.node_id}'s epoch went back to {s.node.epoch}")
            self.node_epochs[key] = s.node.epoch
            if s.node.role != "leader":
                self.leading.pop(s.node_id, None)
                continue
            self.leading[s.node_id] = s.node.epoch
            holder = self.leader_of_epoch.setdefault(s.node.epoch, s.node_id)
            if holder != s.node_id:
                self.fail(1, f"{s.node_id} and {holder} both lead epoch {s.node.epoch}")
        if world.qdisk.epoch < self.max_epoch:
            self.fail(1, f"quorum epoch went back from {self.max_epoch} to {world.qdisk.epoch}")
        self.max_epoch = world.qdisk.epoch

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
        for r in fresh:  # a digest at every seq: each node view is compared with its own prefix
            proj.apply_in_place(self.quorum_state, [r])
            self.policy.record(r, self.quorum_state)
            self._record_digest("quorum", self.quorum_state)
            self._logged(r)
        self._groups_owned(fresh)
        self._no_regroup_on_exit(fresh)

    def _record_digest(self, who: str, state: ClusterState) -> None:
        canonical = state.canonical()
        seen = self.canonicals.setdefault(state.seq, canonical)
        if seen != canonical:
            self.fail(3, f"{who} at seq {state.seq} has digest {_digest(canonical)}, another replica {_digest(seen)}")

    def _logged(self, r: Any) -> None:
        request_id = getattr(r.event, "request_id", None)
        if request_id is not None:
            self.logged_requests.add(request_id)
            if request_id in self.failed_requests:
                self.fail(2, f"request {request_id} was answered {self.failed_requests[request_id]} "
                             f"but its {r.event.type} committed at seq {r.seq}")
        if r.event.type in GONE_EVENTS and r.node is not None:
            self.gone_at[r.node] = r.seq
        elif r.event.type == "NodeJoined" and r.node in self.crashed:
            # Its join was approved, then it died before its NodeJoined committed (seed 4485 at
            # 9 nodes): the leader counts a new member's heartbeats from the admission, so the
            # bound runs from this commit, as for a member that dies right after joining.
            self.crashed[r.node] = (self.world.elapsed, r.seq)

    def _replies(self, world: World) -> None:
        """Reply accounting: what each client was told against what the quorum log holds."""
        for reply in world.replies_sent[self.replies_checked:]:
            rid, op = reply.request_id, world.admin_ops.get(reply.request_id, "?")
            if reply.ok and not reply.unchanged and op not in OK_EXEMPT_OPS and rid not in self.logged_requests:
                self.fail(2, f"{op} {rid} was answered ok (seq {reply.seq}) but is not in the quorum log")
            if not reply.ok and reply.error != OUTCOME_UNKNOWN and reply.status != RETRY_STATUS:
                if rid in self.logged_requests:
                    self.fail(2, f"{op} {rid} was answered {reply.error} but is in the quorum log")
                self.failed_requests.setdefault(rid, f"{reply.status} {reply.error}")
        self.replies_checked = len(world.replies_sent)

    def _node_views(self, world: World, servers: list) -> None:
        """Invariant 3 on the view each Node core decides from, not only on the replicas: every
        core in an active role (a joiner may still hold another history, S17, until replaced)."""
        quorum = world.qdisk.records
        for s in servers:
            if not s.up or s.node is None or s.node.view.seq == 0 or s.node.role not in ACTIVE_ROLES:
                continue
            view, key = s.node.view, (s.node_id, s.incarnation)
            head = (view.seq, view.hash)
            if self.view_heads.get(key) == head:
                continue
            self.view_heads[key] = head
            if view.seq > len(quorum) or quorum[view.seq - 1].hash != view.hash:
                self.fail(3, f"{s.node_id}'s node view at seq {view.seq} is not a prefix of the quorum log")
            canonical, quorum_at = view.canonical(), self.canonicals.get(view.seq)
            if canonical != quorum_at:
                self.fail(3, f"{s.node_id}'s node view at seq {view.seq} has digest {_digest(canonical)}, "
                             f"the quorum log {_digest(quorum_at)}")

    def _replicas(self, world: World, servers: list) -> None:
        quorum = world.qdisk.records
        for s in servers:
            head = len(s.replica)
            if head == self.replica_heads.get(s.node_id) or head == 0:
                self.replica_heads[s.node_id] = head
                continue
            self.replica_heads[s.node_id] = head
            if head > len(quorum) or quorum[head - 1].hash != s.replica[-1].hash:
                self.fail(2, f"{s.node_id}'s replica at seq {head} is not a prefix of the quorum log")
            if s.up and s.elm is not None and s.elm.head_seq == head:
                self._record_digest(s.node_id, s.elm.state)

    def _failures_regroup(self, world: World, servers: list) -> None:
        """Invariant 5, second half: an unexpected failure always regroups. A member that
        crashed (not one that stopped itself: left or evicted) and stays down must be declared
        down once one leader has led for `regroup_bound_ms` since the crash."""
        now, mv = world.elapsed, self.quorum_state.membership
        for s in servers:
            if s.up and s.node is not None:
                self.up_as[s.node_id] = s.node.role
                self.crashed.pop(s.node_id, None)
            elif s.node_id in self.up_as:
                role = self.up_as.pop(s.node_id)
                if role not in STOPPED_ROLES and mv.is_full_member(s.node_id):
                    self.crashed[s.node_id] = (now, len(world.qdisk.records))
        if not self.crashed:
            # Nothing to bound. A leader's start matters only if it came after a crash (the bound
            # runs from the later of the two), so tracking may begin with the next crash.
            self.leader_since = {}
            return
        # A paused leader detects nothing: its leading time counts afresh from its resume.
        leaders = {(lid, e) for lid, e in self.leading.items() if world.servers[lid].paused_until <= world.now}
        self.leader_since = {k: self.leader_since.get(k, now) for k in leaders}
        for node_id, (crashed_at, seq) in list(self.crashed.items()):
            if self.gone_at.get(node_id, 0) > seq or not mv.is_full_member(node_id):
                del self.crashed[node_id]
                continue
            for (lid, epoch), since in self.leader_since.items():
                core = world._core(m.node_addr(lid))
                if now - max(crashed_at, since) < self.regroup_bound_ms or core is None:
                    continue
                if not any(leader_role.queued(core, node_id, t) for t in GONE_EVENTS):
                    self.fail(5, f"{node_id} crashed at {crashed_at} ms and is still down, but {lid} "
                                 f"(leading epoch {epoch} since {since} ms) has not declared it down")

    # --- invariant 6 with a bound ---------------------------------------------------------------------
    def expect_serving(self, from_ms: int, members: set[str]) -> None:
        """From `from_ms` on (the last fault healed, the last restart done), every member
        must be serving within SERVING_BOUND_INTERVALS intervals."""
        self.serving_from, self.serving_members, self.serving_at = from_ms, set(members), None

    @property
    def serving_bound_ms(self) -> int:
        return SERVING_BOUND_INTERVALS * self.world.settings.interval_ms

    def _serving(self, world: World) -> None:
        if self.serving_from is None or self.serving_at is not None or world.elapsed < self.serving_from:
            return
        missing = self.not_serving(world)
        if not missing:
            self.serving_at = world.elapsed
        elif world.elapsed > self.serving_from + self.serving_bound_ms:
            self.fail(6, f"{SERVING_BOUND_INTERVALS} intervals after {self.serving_from} ms not serving: "
                         f"{'; '.join(missing[:3])}")

    def not_serving(self, world: World) -> list[str]:
        """Why the cluster is not serving yet (empty when every member is)."""
        mv, cfg = self.quorum_state.membership, self.quorum_state.config
        out: list[str] = []
        for node_id in sorted(self.serving_members):
            if not cfg.is_member(node_id):
                continue
            s, n = world.servers[node_id], mv.nodes.get(node_id)
            role = s.node.role if s.up and s.node is not None else "down"
            if n is None or not mv.is_full_member(node_id) or role not in ("leader", "follower"):
                out.append(f"{node_id} is {n.state if n else 'absent'} with its core {role}")
        if not world.leaders():
            out.append("no leader")
        online = any(n.state == "Online" for n in mv.nodes.values())
        for g in sorted(mv.groups.values(), key=lambda g: g.name):
            if not must_serve(cfg.groups.get(g.name), g.state):
                continue
            if g.owner is None and online:
                out.append(f"group {g.name} is not placed")
            elif g.owner is not None:
                out += _not_served_by_owner(world, cfg.groups.get(g.name), g.name, g.owner)
        return out

    def check_serving_reached(self) -> None:
        if self.serving_from is not None and self.serving_at is None:
            if self.world.elapsed >= self.serving_from + self.serving_bound_ms:
                self.fail(6, f"not serving {SERVING_BOUND_INTERVALS} intervals after {self.serving_from} ms: "
                             f"{'; '.join(self.not_serving(self.world)[:3])}")

    def _groups_running(self, world: World) -> None:
        """Invariant 4 in simulated real time. A group with resources runs wherever one of its
        resources runs (from the start's first instant to the stop's last, watchdog kills
        included); a group without resources, between its node's StartGroup and StopGroup."""
        on: dict[str, set[str]] = {}
        for (group, _), servers in world.resources.running.items():
            on.setdefault(group, set()).update(servers)
        for group, servers in world.running.items():
            if group not in on and not world.resources.ever_had(group):
                on[group] = set(servers)
        for group, servers in on.items():
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


    def _one_admission_per_join(self, world: World, servers: list) -> None:
        """Invariant 5 (S13-S18): a join admits its node once. A join attempt starts when a
        process starts or a running one goes back to JOINING; a second NodeJoined for the
        same attempt while the first still stands (no NodeDown, NodeExited or NodeEvicted
        between them) is a double admission."""
        for s in servers:
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
