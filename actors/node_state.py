"""What a Node core holds: its role, the state of that role, and what every role shares.

A role's state object exists only while the node is in that role (`NodeState.role_state`):
leaving a role drops it, so nothing is "reset mid-way". Shared fields are the ones every
role reads: identity, the committed view, epoch and leader, groups running here, exits
heard, and whether our heartbeats say we fenced ourselves.

The role modules (`actors/roles/`) decide; this module only holds and describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from enum import StrEnum

from actors import messages as m
from actors.auth import NonceSource, acquire_proof
from actors.effects import Effect, Send
from events.resource_spec import ResourceSpec
from actors.settings import ProtocolSettings
from events.record import Draft
from projections import state as proj
from projections.state import ClusterState

class Role(StrEnum):
    """The node's role. A StrEnum, so `role == "leader"` reads as it did for the shells."""

    JOINING = "joining"  # discovery, then sponsor + challenge + replica sync (S13–S18)
    FORMING = "forming"  # asked the Quorum for ownership (S5)
    TAKING_OVER = "taking_over"  # granted; catching up the replica before leading
    REJECTED = "rejected"  # a join was refused (S16): waits, then tries again
    LEADER = "leader"  # owns the quorum: sequences updates, counts misses, regroups, places groups
    FOLLOWER = "follower"  # heartbeats the leader; runs its groups while acks are fresh (S8c)
    SEARCHING = "searching"  # lost the leader: asks the Quorum, follows a new leader
    EXITED = "exited"  # left the cluster (S19, S21)
    EVICTED = "evicted"  # forced out (S20)


ACTIVE_ROLES = frozenset({Role.LEADER, Role.FOLLOWER, Role.SEARCHING})
STOPPED_ROLES = frozenset({Role.EXITED, Role.EVICTED})
SPONSOR_ROLES = frozenset({Role.LEADER, Role.FOLLOWER})  # may sponsor a joiner (S15)
FOLLOWING_ROLES = frozenset({Role.FOLLOWER, Role.SEARCHING})


class Timer(StrEnum):
    """Every timer a node sets. A StrEnum, so a shell can use the key as a string."""

    TICK = "tick"  # every heartbeat interval: the role's periodic work
    LEAVE = "leave"  # a leaving leader's bounded wait for its own NodeExited; then the bound on stopping
    CONTACT = "contact"  # a follower's leader contact runs out: re-check the groups
    DISCOVERY = "discovery"  # nobody answered Discover: form the cluster (S5)
    MISSES = "misses"  # leader: count heartbeat misses a few times per interval
    RENEW = "renew"  # leader: renew the quorum lease
    LEASE = "lease"  # leader: the lease would end now
    REGROUP = "regroup"  # leader: the regroup round's timeout (S22)
    RESTART = "restart"  # a resource's restart delay is over


@dataclass(frozen=True)
class CreateSpec:
    """S1: what `roster create` decides: the name, the id, the first members, the settings."""

    cluster_id: str
    name: str
    members: tuple[str, ...]
    quorum_resource: str = "quorum"


@dataclass
class NodeIdentity:
    node_id: str
    cluster_id: str
    secret: bytes = field(repr=False)
    peers: tuple[str, ...] = ()  # discovery seeds, used until the replica names the members


# --- per-role state ---------------------------------------------------------------------------
@dataclass
class JoinAttempt:
    """Role JOINING: one attempt, from Discover to our NodeJoined."""

    started_at: int  # pushed forward while our replica is still arriving
    base_incarnation: int  # admitted once the log shows an incarnation above this
    sponsor: str | None = None  # S15: the first member that answered


@dataclass
class Forming:
    """Role FORMING: we asked the Quorum for ownership."""

    started_at: int


@dataclass
class TakingOver:
    """Role TAKING_OVER: granted; the replica catches up to the quorum log's head first."""

    started_at: int
    lease_until: int  # the grant's lease, as we can prove it (its send time + lease)
    # The leader contact we had as a follower: our groups keep running on it while we catch
    # up (the old leader moves them only after that much silence, S8c); 0 if we had none.
    contact_until: int = 0


@dataclass
class Rejected:
    """Role REJECTED: refused by a sponsor (S16); try again at `until`."""

    until: int


@dataclass
class Following:
    """Roles FOLLOWER and SEARCHING (one state: a follower that loses its leader keeps it)."""

    contact_until: int  # our groups may run until then: last acked heartbeat + detection (S8c)
    leader_heard_at: int  # when the leader last answered us (or we were admitted)


@dataclass(frozen=True)
class Waiter:
    """An admin client waiting for its command's records to commit."""

    request_id: str
    reply_to: str
    status: int = 200  # 202: accepted, the rest happens later (e.g. a move waiting for a stop)
    detail: str | None = None
    carried_out_anyway: bool = False  # our own leave: done even if we stop leading first


@dataclass
class Inflight:
    """The leader's one proposal in flight."""

    batch_id: str
    waiters: list[Waiter]
    drafts: tuple[Draft, ...]


@dataclass
class RegroupRound:
    round: int
    reason: str
    acks: set[str] = field(default_factory=set)


@dataclass
class LeaderState:
    """Role LEADER: everything the sequencer keeps, dropped when it steps down."""

    since: int
    lease_until: int  # our quorum lease, as we can prove it
    outbox: list[Draft] = field(default_factory=list)
    waiters: list[Waiter] = field(default_factory=list)  # answered when the outbox commits
    inflight: Inflight | None = None
    batches: int = 0
    last_hb: dict[str, int] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    lag_since: dict[str, int] = field(default_factory=dict)
    regroup: RegroupRound | None = None
    rounds: int = 0
    suspect: str | None = None  # the old leader at a takeover: declared down without the wait
    admitting: dict[str, int] = field(default_factory=dict)  # joiner -> incarnation on its way
    seen_requests: dict[str, None] = field(default_factory=dict)  # recent admin ids, oldest first
    running_on: dict[str, frozenset[str]] = field(default_factory=dict)  # member -> groups its last heartbeat ran
    released: bool = False  # leaving: our QuorumReleased is queued; we append nothing after it
    # `leader._reconcile_if_changed`: the view key reconcile last found nothing to do in, and
    # whether that run consulted `has_stopped` (then the answer may change with time alone).
    quiet_view: tuple | None = field(default=None, compare=False, repr=False)
    waits_on_stop: bool = field(default=False, compare=False, repr=False)


# --- resource groups running here (the logic: actors/group_runner.py) --------------------------
@dataclass
class ResourceRun:
    spec: ResourceSpec
    phase: str = "stopped"  # stopped | starting | online | stopping
    attempt: int = 0  # restarts in place so far (0: the first start here)
    failures: list[int] = field(default_factory=list)  # when it failed, within its restart period
    restart_at: int | None = None  # a restart waits out its delay
    restart_pending: bool = False  # stopping in order to start again (a failure or an admin restart)


@dataclass
class GroupRun:
    resources: dict[str, ResourceRun]  # in start order
    failed: bool = False  # a resource ran out of restarts: stop everything, start nothing
    # The group config every run's spec already matches (`group_runner._refresh_specs`): a
    # config is immutable (a change builds a new one), so while it is the same object there
    # is nothing to refresh. Not state: a copy without it refreshes once.
    synced: Any = field(default=None, compare=False, repr=False)


@dataclass
class RunnerState:
    groups: dict[str, GroupRun] = field(default_factory=dict)
    unreported: list[Draft] = field(default_factory=list)  # reports the log does not show yet
    news: bool = False  # a report not sent yet
    deadline: int | None = None  # the last SetRunDeadline sent to the shell


RoleState = JoinAttempt | Forming | TakingOver | Rejected | Following | LeaderState | None


@dataclass
class SponsorState:
    """The sponsor side of joins (S15, S16). Kept across roles: a challenge may be answered
    after a role change, and the rejection rate limit spans them."""

    # joiner -> (nonce, request): one nonce per pending request, so a duplicated JoinRequest
    # gets the same challenge again instead of a new nonce that fails the first answer's MAC.
    challenges: dict[str, tuple[str, m.JoinRequest]] = field(default_factory=dict)
    rejection_window_start: int = -(10**12)
    rejections_in_window: int = 0
    rejections_suppressed: int = 0


class NodeState:
    """The fields every role reads, and the role with its state."""

    def __init__(self, identity: NodeIdentity, settings: ProtocolSettings, *, entropy: bytes,
                 records: list | None, create: CreateSpec | None, view: ClusterState | None,
                 folds: proj.Folds = proj.IN_PLACE) -> None:
        self.id = identity.node_id
        self.folds = folds
        self.me = m.node_addr(self.id)
        self.identity = identity
        self.settings = settings
        self.nonces = NonceSource(entropy)
        # `view`: the replica's state as its ELM already folded it (a copy), so a restart does
        # not fold the whole log a second time; otherwise fold `records`.
        self.view = view if view is not None else folds.advance(ClusterState(), records or [])
        self.create = create
        self.role: Role = Role.JOINING
        self.role_state: RoleState = JoinAttempt(started_at=0, base_incarnation=0)  # until start() begins one
        self.epoch = self.view.membership.epoch
        self.leader: str | None = None
        self.exits_seen: set[str] = set()
        self.running: set[str] = set()  # groups with a resource here not provably stopped
        self.runner = RunnerState()
        self.stopped_reason: str | None = None
        self.leaving = False
        self.exit_at: int | None = None  # a decided leave: tell the others once stopped, or at this time
        self.fenced = False  # lost the leader and stopped our groups; cleared by rejoining
        self.discovery_attempts = 0  # rotates the discovery slice across attempts
        self.peer_order: tuple[frozenset[str], list[str]] | None = None  # the peers, in discovery order
        self.sponsoring = SponsorState()

    def become(self, role: Role, state: RoleState) -> None:
        self.role, self.role_state = role, state

    # Typed access to the current role's state: a wrong role is a bug, so it raises.
    @property
    def lead(self) -> LeaderState:
        assert isinstance(self.role_state, LeaderState), self.role
        return self.role_state

    @property
    def following(self) -> Following:
        assert isinstance(self.role_state, Following), self.role
        return self.role_state

    @property
    def lease_until(self) -> int:
        """The quorum lease we can prove (0 unless leading or taking over)."""
        s = self.role_state
        return s.lease_until if isinstance(s, (LeaderState, TakingOver)) else 0

    @property
    def contact_until(self) -> int:
        s = self.role_state
        return s.contact_until if isinstance(s, (Following, TakingOver)) else 0


# --- small acts every role may take -------------------------------------------------------------
def heartbeat(node: NodeState, now: int) -> Send:
    assert node.leader is not None
    hb = m.Heartbeat(node=node.id, epoch=node.epoch, applied_seq=node.view.seq, sent_at=now, fenced=node.fenced,
                     running=tuple(sorted(node.running)))
    return Send(m.node_addr(node.leader), hb)


def acquire(node: NodeState, now: int) -> list[Effect]:
    """Ask the Quorum for ownership (S5, S8b), with the proof that we hold the secret."""
    proof = acquire_proof(node.identity.secret, node.id, now)
    return [Send(m.QUORUM, m.AcquireQuorum(node=node.id, sent_at=now, proof=proof))]
