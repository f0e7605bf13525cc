"""The Node core: the cluster service on one server (S9–S22).

Sans-I/O: `step(msg, now, sender)` returns effects. The node keeps its own fold of the
committed log (sent by its ELM as `Committed`) and decides from it. Roles:

  joining    discovery, then sponsor + challenge + replica sync (S13–S18)
  forming    asked the Quorum for ownership; `taking_over` once granted, until caught up
  leader     owns the quorum: sequences every update, counts misses, regroups, places groups
  follower   heartbeats the leader; runs its groups while the leader's acks are fresh (S8c)
  searching  lost the leader: groups stop when contact runs out; asks the Quorum, follows a new leader
  rejected   a join was refused (S16): waits, then tries again
  exited / evicted   the service stopped (S19–S21, S20)

Leader duties live in `actors.leading`, joining in `actors.joining`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actors import messages as m
from actors.auth import NonceSource, acquire_proof
from actors.effects import Effect, Send, SetTimer, StartGroup, StopGroup, StopService
from actors.joining import JoiningMixin
from actors.leading import LeaderMixin
from actors.settings import ProtocolSettings
from events import types as ev
from events.record import draft
from projections import state as proj
from projections.state import ClusterState

TICK_TIMER = "tick"
LEAVE_TIMER = "leave"
LEAVE_COMMIT_WAIT_INTERVALS = 2
ADMIN_FORWARD_MAX_HOPS = 3
CONTACT_TIMER = "contact"
ACTIVE_ROLES = frozenset({"leader", "follower", "searching"})
STOPPED_ROLES = frozenset({"exited", "evicted"})


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


class NodeCore(JoiningMixin, LeaderMixin):
    def __init__(self, identity: NodeIdentity, settings: ProtocolSettings, *, entropy: bytes,
                 records: list | None = None, create: CreateSpec | None = None,
                 view: ClusterState | None = None) -> None:
        self.id = identity.node_id
        self.me = m.node_addr(self.id)
        self.identity = identity
        self.settings = settings
        self.nonces = NonceSource(entropy)
        # `view`: the replica's state as its ELM already folded it (a copy), so a restart does
        # not fold the whole log a second time; otherwise fold `records`.
        self.view = view if view is not None else proj.fold(ClusterState(), records or [])
        self.create = create
        self.role = "joining"
        self.epoch = self.view.membership.epoch
        self.leader: str | None = None
        self.contact_until = 0  # follower: groups may run until then (last acked heartbeat + detection)
        self.lease_until = 0  # leader: its quorum lease, as it can prove it
        self.exits_seen: set[str] = set()
        self.running: set[str] = set()
        self.stopped_reason: str | None = None
        self.leaving = False
        self.fenced = False  # lost the leader and stopped our groups; cleared by rejoining
        self.leader_heard_at = 0  # follower: when the leader last answered us (or we were admitted)
        self._init_joining()
        self._init_leading()

    # --- the shell's entry points ---------------------------------------------------------
    def start(self, now: int) -> list[Effect]:
        """S14: load the local replica, bring no group online, then discover or form."""
        out: list[Effect] = [SetTimer(TICK_TIMER, now + self.settings.interval_ms)]
        if self.create is not None and self.view.seq == 0:
            return out + self._ask_quorum(now, "forming")
        return out + self._begin_join(now)

    def step(self, msg: m.Message, now: int, sender: str) -> list[Effect]:
        if self.role in STOPPED_ROLES:
            return self._stopped_reply(msg)
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            raise TypeError(f"node cannot handle {type(msg).__name__}")
        out = handler(self, msg, now, sender)
        if self.role == "leader":
            out += self._flush(now)
        return out + self._sync_groups(now)

    def _stopped_reply(self, msg: m.Message) -> list[Effect]:
        if isinstance(msg, m.AdminCommand):
            return [Send(msg.reply_to, m.AdminReply(request_id=msg.request_id, ok=False, status=503,
                                                    error="node_stopped", detail=f"{self.id} has {self.role}"))]
        return []

    # --- groups: what may run here, derived from the view and the role (S8c, S11, S12) -------
    def desired_groups(self, now: int) -> set[str]:
        if not self.view.membership.is_full_member(self.id):
            return set()
        if self.role == "leader":
            ok = now < self.lease_until
        elif self.role in ("follower", "searching"):
            ok = now < self.contact_until
        else:
            ok = False
        return set(self.view.membership.groups_of(self.id)) if ok else set()

    def _sync_groups(self, now: int) -> list[Effect]:
        want = self.desired_groups(now)
        out: list[Effect] = [StopGroup(g) for g in sorted(self.running - want)]
        out += [StartGroup(g) for g in sorted(want - self.running)]
        self.running = want
        return out

    # --- the committed log --------------------------------------------------------------------
    def _committed(self, msg: m.Committed, now: int, sender: str) -> list[Effect]:
        if msg.replaced:  # S17: a full copy of another history replaced our replica
            self.view = proj.fold(ClusterState(), msg.records)
            me = self.view.membership.nodes.get(self.id)
            self.join_base_incarnation = me.incarnation if me is not None else 0
        fresh = [r for r in msg.records if r.seq > self.view.seq]
        if fresh and fresh[0].seq != self.view.seq + 1:  # a batch from our ELM was lost: ask again
            return [Send(m.elm_addr(self.id), m.ResendFrom(from_seq=self.view.seq + 1))]
        if fresh:
            proj.apply_in_place(self.view, fresh)
            for r in fresh:  # a ClusterExit heard before a rejoin says nothing about the new incarnation
                if r.event.type == "NodeJoined":
                    self.exits_seen.discard(r.node)
                    if self.role == "leader":  # it can heartbeat only from now on: count from here
                        self.last_hb[r.node], self.misses[r.node] = max(self.last_hb.get(r.node, 0), now), 0
        out: list[Effect] = []
        if msg.batch_id is not None:
            out += self._batch_committed(msg.batch_id, msg.records, now)
        return out + self._follow_view(now, bool(fresh))

    def _follow_view(self, now: int, fresh: bool = False) -> list[Effect]:
        """React to what the log now says about this node and about the leader."""
        me = self.view.membership.nodes.get(self.id)
        if me is not None and me.evicted:
            return self._evicted("evicted (seen in the log)")
        view_epoch, view_leader = self.view.membership.epoch, self.view.membership.leader
        if self.role == "leader" and view_epoch > self.epoch and view_leader != self.id:
            return self._step_down(now, "a newer leader committed")
        if self.role in ("follower", "searching") and view_epoch >= self.epoch and view_leader not in (None, self.id):
            # Learn who leads; only a heartbeat ack makes us a follower again (contact is proof).
            self.epoch, self.leader = view_epoch, view_leader
        if self.role in ("follower", "searching") and me is not None and me.state == "Offline":
            return self._begin_join(now)  # declared down while we were away: rejoin (S13)
        if self.role == "joining":
            if fresh:  # the replica is moving (a large copy may take a while): the join is not stuck
                self.join_started = now
            return self._check_admitted(now)
        if self.leaving and me is not None and me.state == "Offline":
            return self._leave(now)  # our NodeExited is committed: now tell the others and go
        return []

    # --- time -----------------------------------------------------------------------------------
    def _timer(self, msg: m.TimerFired, now: int, sender: str) -> list[Effect]:
        if msg.key == TICK_TIMER:
            return [SetTimer(TICK_TIMER, now + self.settings.interval_ms)] + self._tick(now)
        if msg.key == LEAVE_TIMER and self.leaving and self.role not in STOPPED_ROLES:
            return self._leave(now)  # the commit did not come in time: leave all the same
        if msg.key == "misses":
            return self._count_misses(now) if self.role == "leader" else []
        if msg.key == "renew":
            return self._renew(now)
        if msg.key == "lease":
            return self._step_down(now, "quorum lease expired") if self.role == "leader" and now >= self.lease_until else []
        return self._join_timer(msg.key, now)  # CONTACT_TIMER only re-checks the groups

    def _tick(self, now: int) -> list[Effect]:
        if self.role == "leader":
            return self._leader_tick(now)
        if self.role == "follower":
            if self.leader in (None, self.id) or now - self.leader_heard_at >= self.settings.detection_ms:
                return self._lost_leader(now)  # (no leader known: e.g. it left; look for the next)
            return [self._heartbeat(now)]
        if self.role == "searching":
            out = self._ask_quorum(now, "searching")
            return out + ([self._heartbeat(now)] if self.leader not in (None, self.id) else [])
        return self._join_tick(now)

    def _heartbeat(self, now: int) -> Send:
        assert self.leader is not None
        hb = m.Heartbeat(node=self.id, epoch=self.epoch, applied_seq=self.view.seq, sent_at=now, fenced=self.fenced)
        return Send(m.node_addr(self.leader), hb)

    def _heartbeat_ack(self, msg: m.HeartbeatAck, now: int, sender: str) -> list[Effect]:
        if msg.epoch < self.epoch or self.role not in ("follower", "searching"):
            return []
        self.epoch, self.leader = msg.epoch, msg.leader
        self.role = "follower"
        self.leader_heard_at = now
        out: list[Effect] = []
        if msg.committed_seq > self.view.seq:  # a push was lost: fetch what we miss
            out.append(Send(m.elm_addr(self.id), m.CatchUp(target_seq=msg.committed_seq)))
        # The leader heard us at or after `sent_at`; it waits detection + regroup past its
        # last heartbeat before moving our groups, so we may run them until sent_at + detection.
        until = msg.sent_at + self.settings.detection_ms
        if until > self.contact_until:
            self.contact_until = until
            out.append(SetTimer(CONTACT_TIMER, until))
        return out

    def _lost_leader(self, now: int) -> list[Effect]:
        """S8c: no contact with the leader for interval x misses: self-fence, look for the quorum."""
        self.role = "searching"
        self.fenced = True  # until we rejoin: our heartbeats say so (see LeaderMixin._on_heartbeat)
        out = self._ask_quorum(now, "searching")
        return out + ([self._heartbeat(now)] if self.leader not in (None, self.id) else [])

    def _ask_quorum(self, now: int, role: str) -> list[Effect]:
        self.role = role
        proof = acquire_proof(self.identity.secret, self.id, now)
        return [Send(m.QUORUM, m.AcquireQuorum(node=self.id, sent_at=now, proof=proof))]

    def _not_member(self, msg: m.NotMember, now: int, sender: str) -> list[Effect]:
        if self.role in ("follower", "searching") and msg.epoch >= self.epoch:
            self.epoch, self.leader = msg.epoch, msg.leader
            return self._begin_join(now)
        return []

    def _regroup_poll(self, msg: m.RegroupPoll, now: int, sender: str) -> list[Effect]:
        if msg.epoch < self.epoch or self.role not in ("follower", "searching", "leader"):
            return []
        if self.role == "leader" and msg.leader != self.id:
            out = self._step_down(now, f"polled by leader {msg.leader} of epoch {msg.epoch}")
        else:
            out = []
        self.epoch, self.leader = msg.epoch, msg.leader
        if self.role == "searching":
            self.role = "follower"
            self.leader_heard_at = now
        ack = m.RegroupAck(node=self.id, epoch=msg.epoch, round=msg.round, sent_at=now)
        return out + [Send(m.node_addr(msg.leader), ack)]

    # --- leaving ----------------------------------------------------------------------------------
    def _leave(self, now: int) -> list[Effect]:
        """S21: ClusterExit to every other member, no waiting; stop groups and connections."""
        members = [n for n in self.view.membership.nodes if n != self.id and self.view.membership.is_full_member(n)]
        out: list[Effect] = [Send(m.node_addr(n), m.ClusterExit(node=self.id, epoch=self.epoch)) for n in sorted(members)]
        if self.role == "leader":  # let a follower take over at once instead of waiting out the lease
            out.append(Send(m.QUORUM, m.ReleaseQuorum(node=self.id, epoch=self.epoch)))
        self.role = "exited"
        self.stopped_reason = "left the cluster (ClusterExit)"
        return out + self._sync_groups(now) + [StopService(self.stopped_reason)]

    def _leader_leave(self, msg: m.AdminCommand, now: int) -> list[Effect]:
        """The leader records its own exit (nobody else may be left to), then leaves (S21)."""
        self.leaving = True
        self.outbox.append(draft(ev.NodeExited(), by=self.id, node=self.id))
        self.waiters.append((msg.request_id, msg.reply_to))
        return [SetTimer(LEAVE_TIMER, now + LEAVE_COMMIT_WAIT_INTERVALS * self.settings.interval_ms)]

    def _cluster_exit(self, msg: m.ClusterExit, now: int, sender: str) -> list[Effect]:
        self.exits_seen.add(msg.node)
        if self.role == "leader":
            return self._member_exited(msg.node, now)
        if msg.node == self.leader and self.role in ("follower", "searching"):
            # The leader left on purpose and released the quorum: take over now, keep our groups.
            return self._ask_quorum(now, "searching")
        if self.leader not in (None, self.id, msg.node) and not msg.forwarded:
            relay = msg.model_copy(update={"forwarded": True})
            return [Send(m.node_addr(self.leader), relay)]  # make sure the leader hears it (S22)
        return []

    def _evicted(self, reason: str) -> list[Effect]:
        self.role = "evicted"
        self.stopped_reason = reason
        stops: list[Effect] = [StopGroup(g) for g in sorted(self.running)]
        self.running = set()
        return stops + [StopService(reason)]

    def _evict_notice(self, msg: m.EvictNotice, now: int, sender: str) -> list[Effect]:
        return self._evicted(f"evicted: {msg.reason}") if msg.node == self.id else []

    # --- admin -------------------------------------------------------------------------------------
    def _admin(self, msg: m.AdminCommand, now: int, sender: str) -> list[Effect]:
        if msg.op == "leave" and msg.args.get("node", self.id) == self.id:
            if self.role == "leader" and not self.leaving:
                return self._leader_leave(msg, now)
            reply = m.AdminReply(request_id=msg.request_id, ok=True, seq=self.view.seq)
            return [Send(msg.reply_to, reply)] + self._leave(now)
        if self.role == "leader":
            return self._leader_admin(msg, now)
        if self.leader is not None and self.leader != self.id and self.role in ("follower", "searching") \
                and msg.hops < ADMIN_FORWARD_MAX_HOPS:
            return [Send(m.node_addr(self.leader), msg.model_copy(update={"hops": msg.hops + 1}))]
        reply = m.AdminReply(request_id=msg.request_id, ok=False, status=503, error="no_leader",
                             detail=f"{self.id} knows no reachable leader (role {self.role})")
        return [Send(msg.reply_to, reply)]


_HANDLERS = {
    m.TimerFired: NodeCore._timer,
    m.Committed: NodeCore._committed,
    m.HeartbeatAck: NodeCore._heartbeat_ack,
    m.NotMember: NodeCore._not_member,
    m.RegroupPoll: NodeCore._regroup_poll,
    m.ClusterExit: NodeCore._cluster_exit,
    m.EvictNotice: NodeCore._evict_notice,
    m.AdminCommand: NodeCore._admin,
    # joining (actors.joining)
    m.Discover: JoiningMixin._discover,
    m.DiscoverReply: JoiningMixin._discover_reply,
    m.JoinRequest: JoiningMixin._join_request,
    m.JoinChallenge: JoiningMixin._join_challenge,
    m.JoinResponse: JoiningMixin._join_response,
    m.JoinRefused: JoiningMixin._join_refused,
    m.SyncSent: JoiningMixin._sync_sent,
    m.QuorumGranted: JoiningMixin._granted,
    m.QuorumDenied: JoiningMixin._denied,
    m.CaughtUp: JoiningMixin._caught_up,
    # leading (actors.leading)
    m.JoinApproved: LeaderMixin._join_approved,
    m.ForwardDrafts: LeaderMixin._forwarded,
    m.Heartbeat: LeaderMixin._on_heartbeat,
    m.RegroupAck: LeaderMixin._regroup_ack,
    m.LeaseRenewed: LeaderMixin._lease_renewed,
    m.LeaseLost: LeaderMixin._lease_lost,
    m.ProposalFailed: LeaderMixin._proposal_failed,
}
