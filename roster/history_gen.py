"""Plausible cluster histories, generated deterministically from a seed.

Used by the golden log fixture, the replay benchmark and the property tests (which drive
the same builder with a hypothesis-controlled `random.Random`). The builder keeps a small
model of the cluster (members, states, leader, group owners) so every event it emits is
one a real leader could append: joins go Requested -> Authenticated -> Synced -> Joined,
heartbeat misses climb to the threshold and end in a regroup, evicted nodes come back only
through `NodeAdded`, groups fail over by the policy of DESIGN §4.

Epochs and timestamps are not part of a Draft; `seal_history` derives them: the epoch
grows by one at every `QuorumAcquired` (creation runs at epoch 0), ts grows every record.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Iterable

from events import codec
from events import types as ev
from events.record import Draft, Record

TS_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00.000Z, a fixed origin so histories are reproducible
MAX_TS_STEP_MS = 1500  # records are 1..1500 ms apart in a generated history
MISSES_BEFORE_REGROUP = 5  # DESIGN §4 default: heartbeat misses before the leader regroups
LEASE_MS = 3000  # quorum lease, ≥ 3 × the 1000 ms heartbeat interval
MAX_GROUPS_PER_NODE = 2  # keeps the group count bounded in long histories
DEFAULT_SETTINGS = {
    "heartbeat_interval_ms": 1000,
    "heartbeat_misses": MISSES_BEFORE_REGROUP,
    "regroup_timeout_ms": 1000,
}
SETTING_CHOICES = {  # what an operator plausibly tunes, and to what
    "heartbeat_interval_ms": (250, 500, 1000, 2000),
    "heartbeat_misses": (3, 5, 8),
    "regroup_timeout_ms": (500, 1000, 2000),
}
FULL = ("Online", "Paused")


def node_ids(n_nodes: int) -> list[str]:
    return [f"n{i:02d}" for i in range(1, n_nodes + 1)]


def format_ts(ms: int) -> str:
    """UTC ISO-8601 with milliseconds, the log's `ts` format."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


class HistoryBuilder:
    """Appends drafts to `self.drafts`, one plausible action at a time."""

    def __init__(self, rng: random.Random, n_nodes: int = 16, *, cluster_name: str = "roster-test") -> None:
        if n_nodes < 1:
            raise ValueError("a history needs at least one node")
        self.rng = rng
        self.ids = node_ids(n_nodes)
        self.cluster_name = cluster_name
        self.drafts: list[Draft] = []
        self.members: set[str] = set()
        self.evicted: set[str] = set()
        self.state: dict[str, str] = {}  # Offline / Online / Paused, as the membership view will say
        self.misses: dict[str, int] = {}
        self.replica_seq: dict[str, int] = {}  # the seq a node's replica held when it went away
        self.incarnation: dict[str, int] = {}
        self.leader: str | None = None
        self.owner: dict[str, str | None] = {}  # group -> owner
        self.preferred: dict[str, tuple[str, ...]] = {}
        self.group_counter = 0
        self.stranger_counter = 0
        self._actions: list[tuple[int, Callable[[], bool]]] = [
            (45, self.heartbeat_miss), (14, self.join), (5, self.pause), (5, self.resume),
            (5, self.exit), (1, self.leader_crash), (2, self.evict), (3, self.add),
            (4, self.group_create), (3, self.group_move), (3, self.group_fail), (2, self.group_delete),
            (2, self.place_groups), (2, self.settings), (4, self.join_rejected),
        ]
        self._total_weight = sum(w for w, _ in self._actions)

    # --- plumbing -------------------------------------------------------------------------

    @property
    def seq(self) -> int:
        return len(self.drafts)

    def emit(self, event: ev.Event, *, node: str | None = None, by: str | None = None) -> None:
        self.drafts.append(Draft(node=node, by=by or self.leader or node or self.ids[0], event=event))

    def sorted_where(self, pred: Callable[[str], bool]) -> list[str]:
        return [n for n in self.ids if pred(n)]

    def full_members(self) -> list[str]:
        return self.sorted_where(lambda n: self.state.get(n) in FULL)

    def online(self) -> list[str]:
        return self.sorted_where(lambda n: self.state.get(n) == "Online")

    def groups_of(self, node: str) -> list[str]:
        return sorted(g for g, o in self.owner.items() if o == node)

    # --- driving --------------------------------------------------------------------------

    def create(self, initial_members: int | None = None) -> None:
        """S1–S4: ClusterCreated + QuorumConfigured + NodeAdded per initial member, then form."""
        n_initial = initial_members or self.rng.randint(1, len(self.ids))
        creator = self.ids[0]
        fingerprint = "blake2b:" + "".join(self.rng.choice("0123456789abcdef") for _ in range(16))
        self.emit(ev.ClusterCreated(cluster_id=f"c-{fingerprint[-8:]}", name=self.cluster_name,
                                    secret_fingerprint=fingerprint, settings=dict(DEFAULT_SETTINGS)), by=creator)
        self.emit(ev.QuorumConfigured(resource="quorum-disk", lease_ms=LEASE_MS), by=creator)
        for node in self.ids[:n_initial]:
            self._add(node, by=creator)
        self.form()

    def step(self) -> None:
        """One action: forming when nobody leads, else a weighted pick among those that apply."""
        if self.leader is None:
            self.form()
            return
        while True:
            pick = self.rng.random() * self._total_weight
            for weight, action in self._actions:
                pick -= weight
                if pick < 0:
                    break
            if action():
                return

    def run(self, n_events: int) -> list[Draft]:
        if not self.drafts:
            self.create()
        while self.seq < n_events:
            self.step()
        return self.drafts[:n_events]

    # --- membership actions ---------------------------------------------------------------

    def _add(self, node: str, *, by: str | None = None) -> None:
        self.emit(ev.NodeAdded(address=f"10.0.0.{self.ids.index(node) + 1}:7400"), node=node, by=by)
        self.members.add(node)
        self.evicted.discard(node)
        self.state[node] = "Offline"
        self.misses[node] = 0

    def form(self) -> None:
        """S5: an added, Offline node takes the quorum and forms the cluster under a new epoch."""
        candidates = self.sorted_where(lambda n: n in self.members and self.state.get(n) == "Offline")
        node = self.rng.choice(candidates)
        self.emit(ev.QuorumAcquired(lease_ms=LEASE_MS), node=node, by=node)
        self.leader = node
        self.state[node], self.misses[node] = "Online", 0
        self.incarnation[node] = self.incarnation.get(node, 0) + 1  # forming is a new incarnation
        self._place_all()

    def join(self) -> bool:
        """S13–S18: request, authenticate, sync the replica, joined."""
        candidates = self.sorted_where(lambda n: n in self.members and self.state.get(n) == "Offline")
        if not candidates:
            return False
        node, sponsor = self.rng.choice(candidates), self.rng.choice(self.full_members())
        have = self.replica_seq.get(node, 0)
        self.emit(ev.JoinRequested(sponsor=sponsor, replica_seq=have), node=node, by=sponsor)
        self.emit(ev.NodeAuthenticated(sponsor=sponsor), node=node, by=sponsor)
        mode = "full" if have == 0 or self.rng.random() < 0.1 else "delta"  # 10%: a diverged replica
        self.emit(ev.ConfigDbSynced(sponsor=sponsor, mode=mode, from_seq=0 if mode == "full" else have,
                                    to_seq=self.seq), node=node, by=sponsor)
        self.incarnation[node] = self.incarnation.get(node, 0) + 1
        self.emit(ev.NodeJoined(incarnation=self.incarnation[node]), node=node)
        self.state[node], self.misses[node] = "Online", 0
        self._place_all()
        return True

    def heartbeat_miss(self) -> bool:
        candidates = self.sorted_where(lambda n: n != self.leader and self.state.get(n) in FULL)
        if not candidates:
            return False
        missing = [n for n in candidates if self.misses.get(n, 0) > 0]
        node = self.rng.choice(missing if missing and self.rng.random() < 0.7 else candidates)
        self.misses[node] += 1
        self.emit(ev.HeartbeatMissed(count=self.misses[node]), node=node)
        if self.misses[node] >= MISSES_BEFORE_REGROUP:  # S22: an unexpected failure regroups
            online = tuple(n for n in self.full_members() if n != node)
            self._regrouped(online, node, "heartbeat threshold")
            self._down(node, f"missed {MISSES_BEFORE_REGROUP} heartbeats")
        return True

    def _regrouped(self, online: tuple[str, ...], down: str, reason: str) -> None:
        self.emit(ev.Regrouped(online=online, down=(down,), reason=reason))
        for node in online:  # responders start counting misses afresh
            self.misses[node] = 0

    def _down(self, node: str, reason: str) -> None:
        self.emit(ev.NodeDown(reason=reason), node=node)
        self._gone(node, "owner down")

    def _gone(self, node: str, why: str) -> None:
        self.state[node], self.misses[node] = "Offline", 0
        self.replica_seq[node] = self.seq
        if self.leader == node:
            self.leader = None
        for group in self.groups_of(node):
            self._fail_over(group, why, exclude=node)

    def pause(self) -> bool:
        candidates = self.online()
        if len(candidates) < 2:
            return False
        node = self.rng.choice(candidates)
        drain = self.rng.random() < 0.5
        if drain:  # S12 drain: move the groups away first
            for group in self.groups_of(node):
                self._fail_over(group, "drain", exclude=node)
        self.emit(ev.NodePaused(drain=drain), node=node)
        self.state[node] = "Paused"
        return True

    def resume(self) -> bool:
        candidates = self.sorted_where(lambda n: self.state.get(n) == "Paused")
        if not candidates:
            return False
        node = self.rng.choice(candidates)
        self.emit(ev.NodeResumed(), node=node)
        self.state[node] = "Online"
        self._place_all()
        return True

    def exit(self) -> bool:
        """S19/S21/S22: a planned leave; no regroup. A leaving leader releases the quorum."""
        candidates = self.full_members()
        node = self.rng.choice(candidates)
        if node != self.leader:
            self.emit(ev.NodeExited(), node=node)
            self._gone(node, "owner exited")
            return True
        for group in self.groups_of(node):
            self._fail_over(group, "owner exiting", exclude=node)
        self.emit(ev.QuorumReleased(), node=node, by=node)
        self.emit(ev.NodeExited(), node=node, by=node)
        self._gone(node, "owner exited")
        successors = self.full_members()
        if successors:  # a follower takes over at once, without waiting out the lease
            self._take_over(self.rng.choice(successors))
        return True

    def _take_over(self, node: str) -> None:
        self.emit(ev.QuorumAcquired(lease_ms=LEASE_MS), node=node, by=node)
        self.leader = node
        self.misses[node] = 0

    def leader_crash(self) -> bool:
        """The leader fails: a follower takes the quorum under a new epoch and regroups."""
        old = self.leader
        successors = [n for n in self.full_members() if n != old]
        if old is None or not successors:
            return False
        self._take_over(self.rng.choice(successors))
        self._regrouped(tuple(successors), old, "leader lost")
        self._down(old, "leader lease expired")
        return True

    def evict(self) -> bool:
        """S20: forced out of the member list."""
        candidates = self.sorted_where(lambda n: n in self.members and n != self.leader)
        if not candidates:
            return False
        node = self.rng.choice(candidates)
        self.emit(ev.NodeEvicted(reason=self.rng.choice(["admin", "replica lagging"])), node=node)
        self.members.discard(node)
        self.evicted.add(node)
        if self.state.get(node) in FULL:
            self._gone(node, "owner evicted")
        self.state[node] = "Offline"
        return True

    def add(self) -> bool:
        candidates = self.sorted_where(lambda n: n not in self.members)
        if not candidates:
            return False
        self._add(self.rng.choice(candidates))
        return True

    def join_rejected(self) -> bool:
        """S16: an unknown node, a wrong secret, or an evicted node tries to join."""
        sponsor = self.rng.choice(self.full_members())
        offline = self.sorted_where(lambda n: n in self.members and self.state.get(n) == "Offline")
        evicted = sorted(self.evicted)
        roll = self.rng.random()
        if roll < 0.3 and evicted:
            node, reason = self.rng.choice(evicted), "evicted"
        elif roll < 0.6 and offline:
            node, reason = self.rng.choice(offline), "bad_credentials"
        else:
            self.stranger_counter += 1
            node, reason = f"x{self.stranger_counter:02d}", "unknown_member"
        self.emit(ev.JoinRejected(sponsor=sponsor, reason=reason, suppressed=self.rng.randint(0, 3)),
                  node=node, by=sponsor)
        return True

    def settings(self) -> bool:
        key = self.rng.choice(sorted(SETTING_CHOICES))
        self.emit(ev.SettingsChanged(changes={key: self.rng.choice(SETTING_CHOICES[key])}))
        return True

    # --- resource groups ------------------------------------------------------------------

    def target_for(self, group: str, exclude: str | None = None) -> str | None:
        """DESIGN §4: first preferred owner that is Online, else the Online node with fewest groups."""
        online = [n for n in self.online() if n != exclude]
        for node in self.preferred.get(group, ()):
            if node in online:
                return node
        if not online:
            return None
        return min(online, key=lambda n: (len(self.groups_of(n)), n))

    def _move(self, group: str, to: str | None, reason: str) -> None:
        self.emit(ev.GroupMoved(group=group, from_node=self.owner[group], to_node=to, reason=reason))
        self.owner[group] = to

    def _fail_over(self, group: str, reason: str, *, exclude: str) -> None:
        self._move(group, self.target_for(group, exclude), reason)

    def _place_all(self) -> None:
        for group in sorted(g for g, o in self.owner.items() if o is None):
            target = self.target_for(group)
            if target is None:
                return
            self._move(group, target, "placed")

    def group_create(self) -> bool:
        if len(self.owner) >= MAX_GROUPS_PER_NODE * len(self.ids):
            return False
        self.group_counter += 1
        name = f"g{self.group_counter:03d}"
        pool = sorted(self.members)
        preferred = tuple(self.rng.sample(pool, self.rng.randint(0, min(3, len(pool)))))
        self.emit(ev.GroupCreated(group=name, preferred_owners=preferred, failback=self.rng.random() < 0.3))
        self.owner[name], self.preferred[name] = None, preferred
        target = self.target_for(name)
        if target is not None:
            self._move(name, target, "placed")
        return True

    def group_move(self) -> bool:
        groups = sorted(self.owner)
        if not groups:
            return False
        group = self.rng.choice(groups)
        targets = [n for n in self.online() if n != self.owner[group]]
        if not targets:
            return False
        self._move(group, self.rng.choice(targets), "admin move")
        return True

    def group_fail(self) -> bool:
        owned = sorted(g for g, o in self.owner.items() if o is not None)
        if not owned:
            return False
        group = self.rng.choice(owned)
        self.emit(ev.GroupStateChanged(group=group, state="Failed", reason="resource failed"))
        self.owner[group] = None  # the membership view drops the owner of a Failed group
        return True

    def place_groups(self) -> bool:
        if not any(o is None for o in self.owner.values()) or not self.online():
            return False
        self._place_all()
        return True

    def group_delete(self) -> bool:
        groups = sorted(self.owner)
        if not groups:
            return False
        group = self.rng.choice(groups)
        if self.owner[group] is not None:
            self.emit(ev.GroupStateChanged(group=group, state="Offline", reason="deleting"))
        self.emit(ev.GroupDeleted(group=group))
        del self.owner[group], self.preferred[group]
        return True


def seal_history(drafts: Iterable[Draft], ts_ms: Iterable[int]) -> list[Record]:
    """Seal drafts into a hash-chained log: epoch +1 at each QuorumAcquired, ts from `ts_ms`."""
    out: list[Record] = []
    prev, epoch = codec.GENESIS_HASH, 0
    for seq, (d, ms) in enumerate(zip(drafts, ts_ms), start=1):
        if d.event.type == "QuorumAcquired":
            epoch += 1
        rec = codec.seal(d, seq=seq, epoch=epoch, ts=format_ts(ms), prev_hash=prev)
        out.append(rec)
        prev = rec.hash
    return out


def increasing_ms(rng: random.Random, start_ms: int = TS_START_MS, max_step_ms: int = MAX_TS_STEP_MS):
    """An endless strictly increasing sequence of millisecond times."""
    ms = start_ms
    while True:
        yield ms
        ms += rng.randint(1, max_step_ms)


def make_drafts(n_events: int, seed: int, n_nodes: int = 16) -> list[Draft]:
    return HistoryBuilder(random.Random(seed), n_nodes).run(n_events)


def make_history(n_events: int, seed: int, n_nodes: int = 16) -> list[Record]:
    """`n_events` sealed records of a plausible cluster history; the same seed gives the same bytes."""
    drafts = make_drafts(n_events, seed, n_nodes)
    return seal_history(drafts, increasing_ms(random.Random(seed + 1)))
