"""Role LEADER: the quorum owner. It sequences every update, counts heartbeat misses,
regroups (S22), admits joiners, runs admin commands, evicts laggards (S20) and places
resource groups.

The leader keeps one proposal in flight. Placement decisions are taken only when nothing
is in flight, against the view as it will be once the outbox commits, so they never act on
a view that is missing one of the leader's own updates.
"""

from __future__ import annotations

from typing import Any

from actors import admin
from actors import messages as m
from actors.auth import fingerprint
from actors.effects import Effect, Send, SetTimer
from actors.group_runner import REPORT_TYPES
from actors.node_state import (Following, Inflight, LeaderState, NodeState, RegroupRound, Role, Timer, Waiter)
from actors.placement import better_preferred, load_of, place
from events import types as ev
from events.record import Draft, Record, draft
from projections import state as proj
from projections.state import ClusterState

SEEN_REQUESTS_MAX = 1000
RENEWS_PER_LEASE = 6  # lease 3 intervals: a renewal every half interval
LEAVE_COMMIT_WAIT_INTERVALS = 2


def others(node: NodeState) -> list[str]:
    """The other full members, as they will be once what we have decided commits."""
    mv = node.view.membership
    gone = leaving_pending(node)
    return sorted(n for n in mv.nodes if n != node.id and mv.is_full_member(n) and n not in gone)


def pending_drafts(node: NodeState) -> list[Draft]:
    lead = node.lead
    return [*(lead.inflight.drafts if lead.inflight else ()), *lead.outbox]


def leaving_pending(node: NodeState) -> set[str]:
    return {d.node for d in pending_drafts(node)
            if d.event.type in ("NodeDown", "NodeExited", "NodeEvicted") and d.node is not None}


# --- taking over and stepping down ---------------------------------------------------------------
def become_leader(node: NodeState, now: int) -> list[Effect]:
    old = node.view.membership.leader
    node.become(Role.LEADER, LeaderState(since=now, lease_until=node.lease_until))
    node.leader = node.id
    lead = node.lead
    members = others(node)
    lead.last_hb = {n: now for n in members}
    drafts: list[Draft] = []
    if node.create is not None and node.view.seq == 0:
        drafts += _creation_drafts(node)
    drafts.append(draft(ev.QuorumAcquired(lease_ms=node.settings.lease_ms), by=node.id, node=node.id))
    exited = [n for n in members if n in node.exits_seen]
    drafts += [draft(ev.NodeExited(), by=node.id, node=n) for n in exited]
    lead.outbox += drafts
    out: list[Effect] = renew(node, now) + [SetTimer(Timer.LEASE, lead.lease_until)]
    if node.role != Role.LEADER:
        return out  # the grant's lease ran out while we caught up: we stepped down at once
    if old not in (None, node.id) and old not in node.exits_seen and [n for n in members if n not in exited]:
        lead.suspect = old  # its lease ran out, so it has stopped its groups
        out += start_regroup(node, now, "leader takeover")
    return out


def _creation_drafts(node: NodeState) -> list[Draft]:
    spec = node.create
    assert spec is not None
    created = ev.ClusterCreated(cluster_id=spec.cluster_id, name=spec.name,
                                secret_fingerprint=fingerprint(node.identity.secret),
                                settings=node.settings.as_event_settings())
    out = [draft(created, by=node.id, node=node.id),
           draft(ev.QuorumConfigured(resource=spec.quorum_resource, lease_ms=node.settings.lease_ms), by=node.id)]
    return out + [draft(ev.NodeAdded(), by=node.id, node=n) for n in spec.members]


def step_down(node: NodeState, now: int, reason: str) -> list[Effect]:
    out = _answer_on_step_down(node, reason)
    lease_until = node.lead.lease_until
    # Our groups may run until our lease ends, no longer.
    node.become(Role.SEARCHING, Following(contact_until=lease_until, leader_heard_at=now))
    return out + [SetTimer(Timer.CONTACT, lease_until)]


def _answer_on_step_down(node: NodeState, reason: str) -> list[Effect]:
    """What each waiting client is told when we stop leading (issue 13). Commands still in
    the outbox were never proposed: they did not happen. The batch in flight may be in the
    quorum log already: outcome unknown, with the request id to look up (its events carry
    it). Our own leave goes on whatever happens (the LEAVE timer): it is not a failure."""
    lead = node.lead
    inflight = lead.inflight.waiters if lead.inflight else []
    lead.waiters, queued, lead.inflight = [], lead.waiters, None
    out = _answer([w for w in queued if not w.carried_out_anyway], ok=False, status=503,
                  error="leader_changed", detail=reason)
    out += [Send(w.reply_to, m.AdminReply(request_id=w.request_id, ok=False, status=504, error="outcome_unknown",
                                          detail=f"{reason}; look up request {w.request_id} in the log"))
            for w in inflight if not w.carried_out_anyway]
    anyway = [w for w in [*queued, *inflight] if w.carried_out_anyway]
    return out + _answer(anyway, ok=True, seq=node.view.seq, detail=f"{reason}; leaving all the same")


# --- sequencing ------------------------------------------------------------------------------------
def flush(node: NodeState, now: int) -> list[Effect]:
    lead = node.lead
    if lead.inflight is not None:
        return []
    # Place groups against the view as it will be once the outbox commits, so that a
    # NodeDown and the moves of that node's groups land in one batch (invariant 4).
    lead.outbox += _reconcile_if_changed(node, now)
    if node.leaving and not lead.released:
        # Our exit's batch ends with the release: nothing more is appended under our epoch,
        # and the log says why the next leader needs no lease to run out (S21).
        lead.released = True
        lead.outbox.append(draft(ev.QuorumReleased(), by=node.id, node=node.id))
    if not lead.outbox:
        return []
    lead.batches += 1
    batch_id = f"{node.id}:{node.epoch}:{lead.batches}"
    drafts = tuple(lead.outbox)
    lead.inflight = Inflight(batch_id, lead.waiters, drafts)
    lead.outbox, lead.waiters = [], []
    return [Send(m.elm_addr(node.id), m.Propose(epoch=node.epoch, drafts=drafts, batch_id=batch_id))]


def batch_committed(node: NodeState, batch_id: str, records: tuple, now: int) -> list[Effect]:
    lead = node.lead
    if lead.inflight is None or lead.inflight.batch_id != batch_id:
        return []
    waiters = lead.inflight.waiters
    lead.inflight = None
    seq = records[-1].seq
    return [Send(w.reply_to, m.AdminReply(request_id=w.request_id, ok=True, seq=seq, status=w.status, detail=w.detail))
            for w in waiters]


def _answer(waiters: list[Waiter], **reply: Any) -> list[Effect]:
    return [Send(w.reply_to, m.AdminReply(request_id=w.request_id, **reply)) for w in waiters]


def on_proposal_failed(node: NodeState, msg: m.ProposalFailed, now: int, sender: str) -> list[Effect]:
    inflight = node.lead.inflight
    if inflight is None or inflight.batch_id != msg.batch_id:
        return []
    # Fenced: a newer epoch exists. Conflict: the log moved without us. Either way our
    # picture is stale; step down and let the quorum decide again.
    return step_down(node, now, f"append {msg.reason}")


# --- the leader's own liveness: the quorum lease ---------------------------------------------------
def tick(node: NodeState, now: int) -> list[Effect]:
    if now >= node.lead.lease_until:
        return step_down(node, now, "quorum lease expired")
    return count_misses(node, now) + check_lag(node, now)


def renew(node: NodeState, now: int) -> list[Effect]:
    """Renew several times per lease, so one slow answer does not cost the leadership."""
    if now >= node.lead.lease_until:
        return step_down(node, now, "quorum lease expired")
    period = max(node.settings.lease_ms // RENEWS_PER_LEASE, 1)
    return [Send(m.QUORUM, m.RenewLease(node=node.id, epoch=node.epoch, sent_at=now)),
            SetTimer(Timer.RENEW, now + period)]


def on_lease_timer(node: NodeState, now: int) -> list[Effect]:
    return step_down(node, now, "quorum lease expired") if now >= node.lead.lease_until else []


def on_lease_renewed(node: NodeState, msg: m.LeaseRenewed, now: int, sender: str) -> list[Effect]:
    lead = node.lead
    # The Quorum times the lease on its own clock: we trust it for the drift-shortened span.
    if msg.epoch == node.epoch and msg.sent_at + node.settings.lease_belief_ms > lead.lease_until:
        lead.lease_until = msg.sent_at + node.settings.lease_belief_ms
        # Wake exactly when the lease would end, so our groups stop then and not a tick later.
        return [SetTimer(Timer.LEASE, lead.lease_until)]
    return []


def on_lease_lost(node: NodeState, msg: m.LeaseLost, now: int, sender: str) -> list[Effect]:
    return step_down(node, now, "quorum lease lost") if msg.epoch >= node.epoch else []


# --- failure detection and regroup (S22) ----------------------------------------------------------
def on_heartbeat(node: NodeState, msg: m.Heartbeat, now: int, sender: str) -> list[Effect]:
    lead = node.lead
    if msg.epoch > node.epoch:
        return step_down(node, now, f"{msg.node} knows epoch {msg.epoch}")
    if now >= lead.lease_until:
        # Our lease is over: an ack now would extend a follower's contact on a lease we no
        # longer hold (issue 13). Step down; the next leader answers it.
        return step_down(node, now, "quorum lease expired")
    if msg.fenced or msg.node == lead.suspect or msg.node in leaving_pending(node):
        # Fenced: it lost contact and stopped its groups; it must rejoin, and this heartbeat
        # is no proof of contact (if our answers do not reach it, it must be declared down).
        # Declared gone and its groups may already be moving: an ack now would let it keep
        # running them past the point the new owner starts (invariant 4). The suspect (the
        # old leader, declared down without the usual wait) must not be acked either.
        return [Send(sender, m.NotMember(leader=node.id, epoch=node.epoch))]
    if not node.view.membership.is_full_member(msg.node):
        known = node.view.membership.nodes.get(msg.node)
        if lead.admitting.get(msg.node, 0) > (known.incarnation if known else 0):
            return []  # its NodeJoined is on its way
        return [Send(sender, m.NotMember(leader=node.id, epoch=node.epoch))]
    lead.last_hb[msg.node] = now
    lead.misses[msg.node] = 0
    lead.applied[msg.node] = msg.applied_seq
    lead.running_on[msg.node] = frozenset(msg.running)
    ack = m.HeartbeatAck(leader=node.id, epoch=node.epoch, committed_seq=node.view.seq, sent_at=msg.sent_at)
    return [Send(sender, ack)]


def count_misses(node: NodeState, now: int) -> list[Effect]:
    """A miss is a heartbeat that did not come: miss k of member n is counted once
    `now - last_hb[n]` reaches k intervals plus the grace (followers send on a fixed schedule,
    so a heartbeat sent a little late by its timer or the network is not a miss)."""
    lead = node.lead
    limit = node.settings.heartbeat_misses_before_regroup
    out: list[Effect] = []
    for n in others(node):
        if n in node.exits_seen:
            continue
        count = lead.misses.get(n, 0)
        if now < _miss_due(node, n, count):
            continue
        count += 1
        lead.misses[n] = count
        if count <= limit:  # bounded: a dead node costs at most `limit` events
            lead.outbox.append(draft(ev.HeartbeatMissed(count=count), by=node.id, node=n))
        if count >= limit and lead.regroup is None:
            out += start_regroup(node, now, f"{n} missed {count} heartbeats")
    return out + _next_miss_check(node, now)


def _miss_due(node: NodeState, member: str, count: int) -> int:
    """When the member's next miss (number count + 1) is due."""
    lead, s = node.lead, node.settings
    return lead.last_hb.get(member, lead.since) + s.interval_ms * (count + 1) + s.grace_ms


def _next_miss_check(node: NodeState, now: int) -> list[Effect]:
    """Wake exactly when the next miss is due (so counting adds no lag), and at least once an
    interval: a member admitted meanwhile is due no sooner than an interval after it joined."""
    lead = node.lead
    due = [_miss_due(node, n, lead.misses.get(n, 0)) for n in others(node) if n not in node.exits_seen]
    at = min([now + node.settings.interval_ms, *due])
    return [SetTimer(Timer.MISSES, max(at, now + 1))]


def start_regroup(node: NodeState, now: int, reason: str) -> list[Effect]:
    lead = node.lead
    lead.rounds += 1
    lead.regroup = RegroupRound(round=lead.rounds, reason=reason)
    poll = m.RegroupPoll(leader=node.id, epoch=node.epoch, round=lead.rounds)
    out: list[Effect] = [Send(m.node_addr(n), poll) for n in others(node)]
    return out + [SetTimer(Timer.REGROUP, now + node.settings.regroup_ms)]


def on_regroup_ack(node: NodeState, msg: m.RegroupAck, now: int, sender: str) -> None:
    lead = node.lead
    if lead.regroup is not None and msg.round == lead.regroup.round:
        lead.regroup.acks.add(msg.node)
        lead.last_hb[msg.node] = max(lead.last_hb.get(msg.node, 0), now)


def finish_regroup(node: NodeState, now: int) -> None:
    lead = node.lead
    if lead.regroup is None:
        return
    acks, reason = lead.regroup.acks, lead.regroup.reason
    bound = node.settings.failover_bound_ms
    members = others(node)
    down = [n for n in members if n not in acks and n not in node.exits_seen
            and (n == lead.suspect or now - lead.last_hb.get(n, lead.since) >= bound)]
    online = sorted({node.id, *(n for n in members if n not in down)})
    lead.outbox.append(draft(ev.Regrouped(online=tuple(online), down=tuple(down), reason=reason), by=node.id))
    lead.outbox += [draft(ev.NodeDown(reason="no answer to regroup"), by=node.id, node=n) for n in down]
    for n in online:
        lead.misses[n] = 0
    lead.regroup, lead.suspect = None, None


def check_lag(node: NodeState, now: int) -> list[Effect]:
    """S20: a member whose replica stays too far behind is evicted."""
    lead, head = node.lead, node.view.seq
    out: list[Effect] = []
    for n in others(node):
        if head - lead.applied.get(n, head) <= node.settings.evict_lag_events:
            lead.lag_since.pop(n, None)
            continue
        since = lead.lag_since.setdefault(n, now)
        if now - since >= node.settings.evict_after_ms and not queued(node, n, "NodeEvicted"):
            reason = f"lagging: applied {lead.applied[n]} of {head}"
            lead.outbox.append(draft(ev.NodeEvicted(reason=reason), by=node.id, node=n))
            out.append(Send(m.node_addr(n), m.EvictNotice(node=n, reason=reason)))
    return out


def queued(node: NodeState, who: str, type_name: str) -> bool:
    return any(d.node == who and d.event.type == type_name for d in pending_drafts(node))


# --- planned leave: of a member (S21, S22), and our own ----------------------------------------------
def on_cluster_exit(node: NodeState, msg: m.ClusterExit, now: int, sender: str) -> None:
    """A planned leave: record it and move its groups. No regroup."""
    node.exits_seen.add(msg.node)
    if msg.node in leaving_pending(node):
        return
    # A node that leaves while its NodeJoined is on its way (it was told to leave while joining)
    # is a member once that commits: record its exit right after, or it is taken for failed.
    if node.view.membership.is_full_member(msg.node) or queued(node, msg.node, "NodeJoined"):
        node.lead.outbox.append(draft(ev.NodeExited(), by=node.id, node=msg.node))


def leave_as_leader(node: NodeState, msg: m.AdminCommand, now: int) -> list[Effect]:
    """The leader records its own exit (nobody else may be left to), then leaves (S21)."""
    node.leaving = True
    node.lead.outbox.append(draft(ev.NodeExited(request_id=msg.request_id), by=node.id, node=node.id))
    node.lead.waiters.append(Waiter(msg.request_id, msg.reply_to, carried_out_anyway=True))
    return [SetTimer(Timer.LEAVE, now + LEAVE_COMMIT_WAIT_INTERVALS * node.settings.interval_ms)]


def on_regroup_poll(node: NodeState, msg: m.RegroupPoll, now: int, sender: str) -> list[Effect]:
    """Another leader polls us: it holds a newer (or our own) epoch; we follow it."""
    if msg.leader == node.id:
        out: list[Effect] = []
    else:
        out = step_down(node, now, f"polled by leader {msg.leader} of epoch {msg.epoch}")
        node.become(Role.FOLLOWER, node.following)
        node.following.leader_heard_at = now
    node.epoch, node.leader = msg.epoch, msg.leader
    ack = m.RegroupAck(node=node.id, epoch=msg.epoch, round=msg.round, sent_at=now)
    return out + [Send(m.node_addr(msg.leader), ack)]


# --- joins and forwarded decisions -------------------------------------------------------------------
def on_join_approved(node: NodeState, msg: m.JoinApproved, now: int, sender: str) -> None:
    lead = node.lead
    if not node.view.config.is_member(msg.joiner):
        return
    known = node.view.membership.nodes.get(msg.joiner)
    if known is not None and known.state in ("Online", "Paused") and known.incarnation > msg.seen_incarnation:
        # Admitted already, but it never heard (a lost reply; it asked again): the same join.
        # Its sync and our stream carry its NodeJoined; a second one would admit it twice.
        lead.last_hb[msg.joiner], lead.misses[msg.joiner] = now, 0  # (it is alive: it asked)
        return
    incarnation = (known.incarnation if known else 0) + 1
    if lead.admitting.get(msg.joiner, 0) >= incarnation:
        return
    lead.admitting[msg.joiner] = incarnation
    node.exits_seen.discard(msg.joiner)
    s = msg.sponsor
    lead.outbox += [
        draft(ev.JoinRequested(sponsor=s, replica_seq=msg.their_seq), by=s, node=msg.joiner),
        draft(ev.NodeAuthenticated(sponsor=s), by=s, node=msg.joiner),
        draft(ev.ConfigDbSynced(sponsor=s, mode=msg.mode, from_seq=msg.from_seq, to_seq=msg.to_seq), by=s, node=msg.joiner),
        draft(ev.NodeJoined(incarnation=incarnation), by=node.id, node=msg.joiner),
    ]
    lead.last_hb[msg.joiner], lead.misses[msg.joiner] = now, 0
    lead.applied[msg.joiner] = msg.to_seq


def on_forwarded(node: NodeState, msg: m.ForwardDrafts, now: int, sender: str) -> None:
    """Decisions only the leader may append: a sponsor's rejections, an owner's resource reports."""
    lead = node.lead
    view = speculative_view(node)
    for d in msg.drafts:
        if d.event.type == "JoinRejected":
            lead.outbox.append(d)
        elif d.event.type in REPORT_TYPES and _report_is_news(view, d) and d not in pending_drafts(node):
            lead.outbox.append(d)
            view = speculative_view(node)


def _report_is_news(view: ClusterState, d: Draft) -> bool:
    """An owner's report, once: it re-sends until its log shows it (at least once), so a
    copy the log already holds is dropped; only the group's owner reports it running."""
    e = d.event
    if d.by != d.node or getattr(e, "node", None) != d.by:
        return False
    gv = view.membership.groups.get(e.group)
    rt = view.resources.resources.get((e.group, e.resource))
    if rt is None:
        return False
    if e.type == "ResourceOffline":
        return rt.state != "Offline" and rt.owner in (None, e.node)
    if gv is None or gv.owner != e.node:
        return False  # not its group (any more)
    if e.type == "ResourceOnline":
        return (rt.state, rt.owner, rt.attempt, rt.endpoint) != ("Online", e.node, e.attempt, e.endpoint)
    if e.type == "ResourceRestarted":
        return not (rt.state == "Starting" and rt.attempt >= e.attempt)
    failure = rt.last_failure  # ResourceFailed
    return failure is None or (rt.state, rt.attempt, failure.node, failure.phase) != ("Failed", e.attempt, e.node,
                                                                                       e.phase)


# --- resource groups -----------------------------------------------------------------------------------
def speculative_view(node: NodeState) -> ClusterState:
    """The view as it will be once everything we decided commits (we are the only writer)."""
    drafts = pending_drafts(node)
    if not drafts:
        return node.view
    base = node.view.seq
    pending = [Record(base + i + 1, node.epoch, "", d.node, d.by, d.event, "") for i, d in enumerate(drafts)]
    return proj.fold(node.view, pending)


def _reconcile_if_changed(node: NodeState, now: int) -> list[Draft]:
    """`reconcile`, skipped while it would decide nothing new. With nothing pending it is a
    function of the committed view alone, unless a group waits for its old owner to stop
    (time and heartbeats: `has_stopped`); so a view it found nothing to do in, unchanged
    (same object, seq and hash: the view folds in place), has nothing to do in again."""
    lead, view = node.lead, speculative_view(node)
    key = (id(view), view.seq, view.hash) if view is node.view else None
    if key is not None and key == lead.quiet_view:
        return []
    lead.waits_on_stop = False
    out = reconcile(node, view, now)
    lead.quiet_view = key if not out and not lead.waits_on_stop else None
    return out


def reconcile(node: NodeState, view: ClusterState, now: int) -> list[Draft]:
    """Keep every group on one live owner, never two (invariant 4).

    A group leaves a live owner in two steps: released (GroupStateChanged Offline), then
    placed once the old owner has provably stopped it (`has_stopped`). A dead owner's
    groups move in the same batch that declares it down: the timing rule already proves it.
    """
    lead, mv, cfg = node.lead, view.membership, view.config
    if mv.stopping:
        return []  # a planned stop of the whole cluster: groups wait, Offline, for the next start
    load = load_of(mv)
    out: list[Draft] = []
    for name in sorted(cfg.groups):
        group, gv = cfg.groups[name], mv.groups.get(name)
        if gv is None:
            continue
        if group.held or gv.state == "Failed":  # placed nowhere until an admin brings it online
            if group.held and gv.owner is not None and mv.is_full_member(gv.owner):
                out.append(admin.release(name, "taken offline by an admin", node.id))
            continue
        failed_on = view.resources.failed_on.get(name)
        if gv.owner is not None and gv.owner == failed_on and mv.is_full_member(gv.owner):
            out.append(admin.release(name, f"a resource ran out of restarts on {gv.owner}", node.id))
            continue
        if gv.owner is not None and mv.is_full_member(gv.owner):
            target = better_preferred(group, gv.owner, mv) if group.failback else None
            if target in view.resources.failed_over_from(name, group.failover.period_ms):
                target = None  # no failback to where its resources ran out of restarts (no ping-pong)
            if target not in (None, gv.owner) and mv.nodes[target].state == "Online":
                out.append(admin.release(name, f"moving to {target}", node.id, moving_to=target))
            continue
        prev = gv.owner or gv.last_owner
        lead.waits_on_stop = lead.waits_on_stop or prev is not None
        if prev is not None and not has_stopped(node, prev, name, gv.since_seq, view, now):
            if gv.owner is not None:  # its owner is gone but may still run it: release, wait
                out.append(admin.release(name, f"owner {prev} left; waiting for it to stop", node.id))
            continue
        if failed_on is not None:  # (an owner that ran out of restarts may also be down by now)
            count = view.resources.failovers_within(name, group.failover.period_ms)
            if count > group.failover.threshold:  # WSFC FailoverThreshold: it stays offline
                reason = f"failed over {count} times in {group.failover.period_ms // 1000} s"
                out.append(draft(ev.GroupStateChanged(group=name, state="Failed", reason=reason), by=node.id))
                continue
        wanted = gv.moving_to  # a durable move intent: the release named the target
        if wanted and mv.nodes.get(wanted) and mv.nodes[wanted].state == "Online":
            target = wanted
        else:  # away from the node it just failed on, unless no other node can take it
            avoid = frozenset({failed_on}) if failed_on else frozenset()
            target = place(group, mv, load, exclude=avoid) or place(group, mv, load)
        if target is None and gv.owner is None:
            continue
        if target is not None:
            load[target] = load.get(target, 0) + 1
        reason = move_reason(mv, gv.owner, prev, wanted is not None)
        out.append(draft(ev.GroupMoved(group=name, from_node=gv.owner, to_node=target, reason=reason), by=node.id))
    return out


def move_reason(mv: Any, owner: str | None, prev: str | None, wanted: bool) -> str:
    """Why a group moves, in words an operator filters the log by: `failover` only after its
    owner was declared down; `planned leave`, `evicted`, `drain` for the planned causes."""
    gone = mv.nodes.get(owner or prev or "")
    if gone is not None and gone.evicted:
        return "evicted"
    if owner is not None:  # its owner stopped being a member without releasing it first
        return "planned leave" if gone is not None and gone.reason.startswith("exited") else "failover"
    if gone is not None and gone.state == "Paused" and "drain" in gone.reason:
        return "drain"
    return "moved" if wanted else "placed"


def has_stopped(node: NodeState, who: str, group: str, release_seq: int, view: ClusterState, now: int) -> bool:
    """Proof that `who` no longer runs `group`, which it owned until `release_seq`."""
    lead = node.lead
    if who == node.id:
        # Followers may read a release from the quorum log before we hear that our append
        # succeeded, so ours is stopped only once it is not running here and our committed
        # view no longer gives it to us (a leader that is leaving still runs its groups).
        committed = node.view.membership.groups.get(group)
        return group not in node.running and (committed is None or committed.owner != node.id)
    if who in node.exits_seen:
        return True  # an exiting node stops its groups before it says so
    gone = view.membership.nodes.get(who)
    if gone is not None and gone.state == "Offline" and gone.reason.startswith("exited"):
        return True  # the log says it exited (it stops its groups before it tells: issue 13)
    if view.membership.is_full_member(who) and lead.applied.get(who, 0) >= release_seq \
            and group not in lead.running_on.get(who, frozenset()):
        return True  # it applied the release and its heartbeat says nothing of the group runs there
    # Silent for interval x misses: its leader contact ran out, so it fenced itself (S8c); the
    # grace more covers its contact timer firing late (its contact already allows for drift).
    return now - lead.last_hb.get(who, lead.since) >= node.settings.detection_ms + node.settings.grace_ms


# --- admin commands ------------------------------------------------------------------------------------
def on_admin(node: NodeState, msg: m.AdminCommand, now: int, sender: str) -> list[Effect]:
    lead = node.lead
    if msg.request_id in lead.seen_requests:
        return []  # a duplicate delivery: the first copy is answered
    committed = node.view.membership.requests.get(msg.request_id)
    if committed is not None:  # it ran already (perhaps under an earlier leader): not twice
        return [Send(msg.reply_to, m.AdminReply(request_id=msg.request_id, ok=True, seq=committed))]
    lead.seen_requests[msg.request_id] = None
    if len(lead.seen_requests) > SEEN_REQUESTS_MAX:
        lead.seen_requests.pop(next(iter(lead.seen_requests)))
    # Decide against the view as it will be once our pending decisions commit, so a command
    # never contradicts one already on its way (e.g. a move of a group just placed).
    def stopped(who: str, group: str, release_seq: int, view: ClusterState) -> bool:
        return has_stopped(node, who, group, release_seq, view, now)

    decision = admin.decide(speculative_view(node), msg, leader=node.id, stopped=stopped)
    if decision.reply is not None:
        return [Send(msg.reply_to, decision.reply)]
    if decision.drafts:  # answered once they commit; a forwarded leave is answered by the node itself
        lead.outbox += [_traced(d, msg.request_id) for d in decision.drafts]
        lead.waiters.append(Waiter(msg.request_id, msg.reply_to, decision.status, decision.detail))
    return list(decision.effects)


def _traced(d: Draft, request_id: str) -> Draft:
    """The command's request id in its events: the log answers "did it happen?" (issue 13).
    (Only an AdminEvent has the field; a copy with an unknown field would be a malformed event.)"""
    if not isinstance(d.event, ev.AdminEvent):
        return d
    return Draft(d.node, d.by, d.event.model_copy(update={"request_id": request_id}))
