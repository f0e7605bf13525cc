"""The Node core: the cluster service on one server (S9–S22).

Sans-I/O: `step(msg, now, sender)` returns effects. The node keeps its own fold of the
committed log (sent by its ELM as `Committed`) and decides from it.

How a step runs (like etcd raft's `Step`): a stopped node only answers admin clients; a
message from an older epoch of a leader is dropped; then `STEP[role][type(msg)]` handles
it — a message the role has no entry for is ignored, here and nowhere else; then the
leader flushes what it decided and every role re-derives which groups may run here.
Timers go through `TIMERS[role]`, periodic work through `TICK[role]`.

Where to find a role: `actors/roles/joining.py` (JOINING, FORMING, TAKING_OVER, REJECTED),
`follower.py` (FOLLOWER, SEARCHING), `leader.py` (LEADER), `sponsor.py` (a leader's or
follower's side of a join), `exiting.py` (EXITED, EVICTED). State: `actors/node_state.py`.
"""

from __future__ import annotations

from typing import Any, Callable

from actors import messages as m
from actors.effects import Effect, Send, SetTimer
from actors import group_runner
from actors.groups import desired_groups, sync_groups
from actors.node_state import (ACTIVE_ROLES, STOPPED_ROLES, CreateSpec, NodeIdentity,
                               NodeState, Role, Timer)
from actors.roles import exiting, follower, joining, leader, sponsor
from actors.settings import ProtocolSettings
from projections import state as proj
from projections.state import ClusterState

__all__ = ["ACTIVE_ROLES", "STOPPED_ROLES", "CreateSpec", "NodeCore", "NodeIdentity", "Role", "Timer"]

# Messages a leader of an older epoch sent: every role drops them, before its step.
EPOCH_CHECKED = (m.HeartbeatAck, m.NotMember, m.RegroupPoll)
TIMER_OF = {t.value: t for t in Timer}  # a TimerFired's key -> its Timer (not Timer(key): per timer)
TICK_EARLY_FRACTION = 4  # a tick less than interval / 4 before its time is one that fired early

Handler = Callable[[Any, Any, int, str], list[Effect]]
TimerHandler = Callable[[Any, int], list[Effect]]


def _quiet(fn: Callable[..., None]) -> Callable[..., list[Effect]]:
    """A handler that only updates state (it sends nothing) in the table's shape."""
    def handle(*args: Any) -> list[Effect]:
        fn(*args)
        return []
    handle.__name__ = handle.__qualname__ = fn.__name__
    return handle


class NodeCore(NodeState):
    def __init__(self, identity: NodeIdentity, settings: ProtocolSettings, *, entropy: bytes,
                 records: list | None = None, create: CreateSpec | None = None,
                 view: ClusterState | None = None, folds: proj.Folds = proj.IN_PLACE) -> None:
        super().__init__(identity, settings, entropy=entropy, records=records, create=create, view=view, folds=folds)

    # --- the shell's entry points ---------------------------------------------------------
    def start(self, now: int) -> list[Effect]:
        """S14: load the local replica, bring no group online, then discover or form."""
        out: list[Effect] = [SetTimer(Timer.TICK, now + self.settings.interval_ms)]
        if self.create is not None and self.view.seq == 0:
            return out + joining.begin_forming(self, now, started_at=0)
        return out + joining.begin_join(self, now)

    def step(self, msg: m.Message, now: int, sender: str) -> list[Effect]:
        if self.role in STOPPED_ROLES:
            return exiting.stopped_reply(self, msg)
        if type(msg) not in KNOWN_MESSAGES:
            raise TypeError(f"node cannot handle {type(msg).__name__}")
        out: list[Effect] = []
        if not (isinstance(msg, EPOCH_CHECKED) and msg.epoch < self.epoch):
            handler = STEP[self.role].get(type(msg))
            if handler is not None:
                out = handler(self, msg, now, sender)
        if self.role == Role.LEADER:
            out += leader.flush(self, now)
        out += sync_groups(self, now)
        if self.runner.unreported:  # (a leader's own reports join its outbox here, out with its next batch)
            out += group_runner.flush_reports(self, resend=isinstance(msg, m.TimerFired) and msg.key == Timer.TICK)
        if self.exit_at is not None and exiting.ready_to_exit(self, now):  # a decided leave, groups stopped
            out += exiting.leave(self, now)
        return out

    def desired_groups(self, now: int) -> set[str]:
        return desired_groups(self, now)


# --- every role: the committed log ---------------------------------------------------------------
def on_committed(node: NodeState, msg: m.Committed, now: int, sender: str) -> list[Effect]:
    if msg.replaced:  # S17: a full copy of another history replaced our replica
        node.view = node.folds.advance(ClusterState(), msg.records)
        joining.on_replaced(node)
    fresh = [r for r in msg.records if r.seq > node.view.seq]
    if fresh and fresh[0].seq != node.view.seq + 1:  # a batch from our ELM was lost: ask again
        return [Send(m.elm_addr(node.id), m.ResendFrom(from_seq=node.view.seq + 1))]
    if fresh:
        node.view = node.folds.advance(node.view, fresh)
        group_runner.confirm_reports(node, fresh)
        for r in fresh:  # a ClusterExit heard before a rejoin says nothing about the new incarnation
            if r.event.type == "ResourceRestartRequested":
                group_runner.on_restart_requested(node, r.event.group, r.event.resource, now)
            if r.event.type == "NodeJoined":
                node.exits_seen.discard(r.node)
                if node.role == Role.LEADER:  # it can heartbeat only from now on: count from here
                    lead = node.lead
                    lead.last_hb[r.node], lead.misses[r.node] = max(lead.last_hb.get(r.node, 0), now), 0
    out: list[Effect] = []
    if msg.batch_id is not None and node.role == Role.LEADER:
        out += leader.batch_committed(node, msg.batch_id, msg.records, now)
    return out + _follow_view(node, now, bool(fresh))


def _follow_view(node: NodeState, now: int, fresh: bool) -> list[Effect]:
    """React to what the log now says about this node and about the leader."""
    me = node.view.membership.nodes.get(node.id)
    if me is not None and me.evicted:
        return exiting.evicted(node, "evicted (seen in the log)", now)
    return ON_LOG[node.role](node, now, fresh)


def _log_leader(node: NodeState, now: int, fresh: bool) -> list[Effect]:
    mv = node.view.membership
    if mv.epoch > node.epoch and mv.leader != node.id:
        return leader.step_down(node, now, "a newer leader committed")
    return _log_any(node, now, fresh)


def _log_following(node: NodeState, now: int, fresh: bool) -> list[Effect]:
    mv = node.view.membership
    if mv.epoch >= node.epoch and mv.leader not in (None, node.id):
        # Learn who leads; only a heartbeat ack makes us a follower again (contact is proof).
        node.epoch, node.leader = mv.epoch, mv.leader
    me = mv.nodes.get(node.id)
    if me is not None and me.state == "Offline":
        return joining.begin_join(node, now)  # declared down while we were away: rejoin (S13)
    return _log_any(node, now, fresh)


def _log_any(node: NodeState, now: int, fresh: bool) -> list[Effect]:
    me = node.view.membership.nodes.get(node.id)
    if node.leaving and me is not None and me.state == "Offline" and node.exit_at is None:
        return exiting.begin_exit(node, now)  # our NodeExited is committed: stop, then tell and go
    return []


# --- every role: eviction, admin commands -----------------------------------------------------------
def on_evict_notice(node: NodeState, msg: m.EvictNotice, now: int, sender: str) -> list[Effect]:
    return exiting.evicted(node, f"evicted: {msg.reason}", now) if msg.node == node.id else []


def _admin(role_handler: Handler) -> Handler:
    """A planned leave of this node is its own to carry out, in any role (S21); every other
    command goes to the role's handler."""
    def handle(node: NodeState, msg: m.AdminCommand, now: int, sender: str) -> list[Effect]:
        if msg.op == "leave" and msg.args.get("node", node.id) == node.id:
            if node.role == Role.LEADER and not node.leaving:
                return leader.leave_as_leader(node, msg, now)
            reply = m.AdminReply(request_id=msg.request_id, ok=True, seq=node.view.seq)
            return [Send(msg.reply_to, reply)] + exiting.begin_exit(node, now)
        return role_handler(node, msg, now, sender)
    return handle


def _no_leader(node: NodeState, msg: m.AdminCommand, now: int, sender: str) -> list[Effect]:
    return exiting.no_leader(node, msg)


# --- time ---------------------------------------------------------------------------------------------
def on_timer(node: NodeState, msg: m.TimerFired, now: int, sender: str) -> list[Effect]:
    key = TIMER_OF.get(msg.key)
    if key is None:  # a key no role sets: a bug (as `Timer(key)` would say)
        raise ValueError(f"{msg.key!r} is not a Timer")
    if key == Timer.TICK:
        return [SetTimer(Timer.TICK, next_tick_at(now, node.settings.interval_ms))] + TICK[node.role](node, now)
    handler = TIMERS[node.role].get(key)
    return handler(node, now) if handler is not None else []


def next_tick_at(now: int, interval_ms: int) -> int:
    """Ticks (a follower's heartbeats) keep a fixed schedule, the multiples of the interval: a
    tick that fired late does not push the next one later, so lateness never adds up into a
    gap the leader would count as a miss. A tick that fired just before its time (a shell's
    clocks differ by a little) skips to the one after instead of firing twice."""
    at = (now // interval_ms + 1) * interval_ms
    return at + interval_ms if at - now < interval_ms // TICK_EARLY_FRACTION else at


def _on_leave_timer(node: NodeState, now: int) -> list[Effect]:
    # Our NodeExited did not commit in time: leave all the same (once stopped: `ready_to_exit`).
    # A stop bound running out needs nothing here: the step's end sees it.
    return exiting.begin_exit(node, now) if node.leaving and node.exit_at is None else []


def _ignore(node: NodeState, msg: m.Message, now: int, sender: str) -> list[Effect]:
    return []


def _nothing(node: NodeState, now: int) -> list[Effect]:
    return []  # e.g. CONTACT: the step re-derives the groups after every timer


# --- the tables ------------------------------------------------------------------------------------------
EVERY_ROLE: dict[type, Handler] = {
    m.Committed: on_committed,
    m.TimerFired: on_timer,
    m.EvictNotice: on_evict_notice,
    m.AdminCommand: _admin(_no_leader),
    m.QuorumDenied: _quiet(joining.on_denied),
    m.SyncSent: sponsor.on_sync_sent,  # our ELM's answer may come after a role change
    m.JoinResponse: sponsor.on_join_response,  # (forgets the challenge in any role)
    # the resource host's reports: a group may still be stopping after a role change
    m.ResourceStarted: group_runner.on_started,
    m.ResourceFailed: group_runner.on_failed,
    m.ResourceStopped: group_runner.on_stopped,
}
SPONSORING: dict[type, Handler] = {m.Discover: sponsor.on_discover, m.JoinRequest: sponsor.on_join_request}
FOLLOWING: dict[type, Handler] = {
    m.HeartbeatAck: follower.on_heartbeat_ack,
    m.NotMember: follower.on_not_member,
    m.RegroupPoll: follower.on_regroup_poll,
    m.ClusterExit: follower.on_cluster_exit,
    m.AdminCommand: _admin(follower.on_admin),
}

STEP: dict[Role, dict[type, Handler]] = {
    Role.LEADER: {
        **EVERY_ROLE, **SPONSORING,
        m.AdminCommand: _admin(leader.on_admin),
        m.QuorumDenied: _ignore,  # a stale denial's owner hint must not replace who leads: we do
        m.RegroupPoll: leader.on_regroup_poll,
        m.ClusterExit: _quiet(leader.on_cluster_exit),
        m.JoinApproved: _quiet(leader.on_join_approved),
        m.ForwardDrafts: _quiet(leader.on_forwarded),
        m.Heartbeat: leader.on_heartbeat,
        m.RegroupAck: _quiet(leader.on_regroup_ack),
        m.LeaseRenewed: leader.on_lease_renewed,
        m.LeaseLost: leader.on_lease_lost,
        m.ProposalFailed: leader.on_proposal_failed,
    },
    Role.FOLLOWER: {**EVERY_ROLE, **SPONSORING, **FOLLOWING},
    Role.SEARCHING: {**EVERY_ROLE, **FOLLOWING, m.RegroupPoll: follower.on_regroup_poll_searching,
                     m.QuorumGranted: joining.on_granted},
    Role.JOINING: {
        **EVERY_ROLE,
        m.DiscoverReply: joining.on_discover_reply,
        m.JoinChallenge: joining.on_join_challenge,
        m.JoinRefused: _quiet(joining.on_join_refused),
        m.QuorumGranted: joining.on_granted,
        m.ClusterExit: joining.on_cluster_exit,
    },
    Role.FORMING: {**EVERY_ROLE, m.QuorumGranted: joining.on_granted, m.QuorumDenied: joining.on_denied_forming,
                   m.ClusterExit: joining.on_cluster_exit},
    Role.TAKING_OVER: {**EVERY_ROLE, m.CaughtUp: joining.on_caught_up, m.ClusterExit: joining.on_cluster_exit},
    Role.REJECTED: {**EVERY_ROLE, m.ClusterExit: joining.on_cluster_exit},
}

TICK: dict[Role, TimerHandler] = {
    Role.LEADER: leader.tick,
    Role.FOLLOWER: follower.tick_follower,
    Role.SEARCHING: follower.tick_searching,
    Role.JOINING: joining.tick_pending,
    Role.FORMING: joining.tick_pending,
    Role.TAKING_OVER: joining.tick_pending,
    Role.REJECTED: joining.tick_rejected,
}

# CONTACT and RESTART only wake the step: its sync re-derives what runs here.
_EVERY_ROLE_TIMERS: dict[Timer, TimerHandler] = {Timer.LEAVE: _on_leave_timer, Timer.CONTACT: _nothing,
                                                 Timer.RESTART: _nothing}
TIMERS: dict[Role, dict[Timer, TimerHandler]] = {
    Role.LEADER: {
        **_EVERY_ROLE_TIMERS,
        Timer.MISSES: leader.count_misses,
        Timer.RENEW: leader.renew,
        Timer.LEASE: leader.on_lease_timer,
        Timer.REGROUP: _quiet(leader.finish_regroup),
    },
    Role.FOLLOWER: dict(_EVERY_ROLE_TIMERS),
    Role.SEARCHING: dict(_EVERY_ROLE_TIMERS),
    Role.JOINING: {**_EVERY_ROLE_TIMERS, Timer.DISCOVERY: joining.on_discovery_timer},
    Role.FORMING: dict(_EVERY_ROLE_TIMERS),
    Role.TAKING_OVER: dict(_EVERY_ROLE_TIMERS),
    Role.REJECTED: dict(_EVERY_ROLE_TIMERS),
}

# What the committed log moving means, per role (after the eviction check every role makes).
ON_LOG: dict[Role, Callable[[Any, int, bool], list[Effect]]] = {
    Role.LEADER: _log_leader,
    Role.FOLLOWER: _log_following,
    Role.SEARCHING: _log_following,
    Role.JOINING: joining.on_replica_moved,
    Role.FORMING: _log_any,
    Role.TAKING_OVER: _log_any,
    Role.REJECTED: _log_any,
}

KNOWN_MESSAGES = frozenset(t for table in STEP.values() for t in table)
