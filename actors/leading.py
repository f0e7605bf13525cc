"""The leader's duties: sequencing updates, failure detection, regroup (S22), joins,
admin commands, eviction (S20) and resource-group placement.

The leader keeps one proposal in flight. Decisions that depend on the committed view
(group placement) are only taken when nothing is in flight, so they never act on a view
that is missing one of the leader's own updates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors import messages as m
from actors.effects import Effect, Send, SetTimer
from actors.placement import better_preferred, load_of, place
from events import types as ev
from events.record import Draft, Record, draft
from projections import state as proj
from projections.state import ClusterState

if TYPE_CHECKING:
    from actors.node import NodeCore

REGROUP_TIMER = "regroup"
MISS_TIMER = "misses"
MISS_CHECKS_PER_INTERVAL = 4
SEEN_REQUESTS_MAX = 1000
RENEW_TIMER = "renew"
LEASE_TIMER = "lease"
RENEWS_PER_LEASE = 6  # lease 3 intervals: a renewal every half interval
GROUP_NAME_MAX_CHARS = 64


class LeaderMixin:
    def _init_leading(self: NodeCore) -> None:
        self.outbox: list[Draft] = []
        self.waiters: list[tuple[str, str]] = []  # (request_id, reply_to) answered when the outbox commits
        self.inflight: tuple[str, list[tuple[str, str]], tuple[Draft, ...]] | None = None
        self.batches = 0
        self.leader_since = 0
        self.last_hb: dict[str, int] = {}
        self.misses: dict[str, int] = {}
        self.applied: dict[str, int] = {}
        self.lag_since: dict[str, int] = {}
        self.regroup: dict[str, Any] | None = None
        self.rounds = 0
        self.suspect: str | None = None
        self.admitting: dict[str, int] = {}
        self.seen_requests: dict[str, None] = {}  # recent admin request ids, oldest first
        self.moving: dict[str, str] = {}  # group -> where it goes once its old owner has stopped it
        self._now = 0

    def _others(self: NodeCore) -> list[str]:
        """The other full members, as they will be once what we have decided commits."""
        mv = self.view.membership
        gone = self._leaving_pending()
        return sorted(n for n in mv.nodes if n != self.id and mv.is_full_member(n) and n not in gone)

    def _pending_drafts(self: NodeCore) -> list[Draft]:
        return [*(self.inflight[2] if self.inflight else ()), *self.outbox]

    def _leaving_pending(self: NodeCore) -> set[str]:
        return {d.node for d in self._pending_drafts()
                if d.event.type in ("NodeDown", "NodeExited", "NodeEvicted") and d.node is not None}

    # --- taking over -------------------------------------------------------------------------
    def _become_leader(self: NodeCore, now: int) -> list[Effect]:
        old = self.view.membership.leader
        self.role, self.leader, self.leader_since = "leader", self.id, now
        self._init_leading()
        self.leader_since = now
        others = self._others()
        self.last_hb = {n: now for n in others}
        drafts: list[Draft] = []
        if self.create is not None and self.view.seq == 0:
            drafts += self._creation_drafts()
        drafts.append(draft(ev.QuorumAcquired(lease_ms=self.settings.lease_ms), by=self.id, node=self.id))
        exited = [n for n in others if n in self.exits_seen]
        drafts += [draft(ev.NodeExited(), by=self.id, node=n) for n in exited]
        self.outbox += drafts
        out: list[Effect] = self._renew(now) + [SetTimer(LEASE_TIMER, self.lease_until)]
        if old not in (None, self.id) and old not in self.exits_seen and [n for n in others if n not in exited]:
            self.suspect = old  # its lease ran out, so it has stopped its groups
            out += self._start_regroup(now, "leader takeover")
        return out

    def _creation_drafts(self: NodeCore) -> list[Draft]:
        from actors.auth import fingerprint

        spec = self.create
        assert spec is not None
        created = ev.ClusterCreated(cluster_id=spec.cluster_id, name=spec.name,
                                    secret_fingerprint=fingerprint(self.identity.secret),
                                    settings=self.settings.as_event_settings())
        out = [draft(created, by=self.id, node=self.id),
               draft(ev.QuorumConfigured(resource=spec.quorum_resource, lease_ms=self.settings.lease_ms), by=self.id)]
        return out + [draft(ev.NodeAdded(), by=self.id, node=n) for n in spec.members]

    def _step_down(self: NodeCore, now: int, reason: str) -> list[Effect]:
        out = self._answer_waiters(False, None, status=503, error="leader_changed", detail=reason)
        self.outbox, self.inflight, self.regroup = [], None, None
        self.role = "searching"
        self.contact_until = self.lease_until  # our groups may run until our lease ends, no longer
        return out + [SetTimer("contact", self.contact_until)]

    # --- sequencing ------------------------------------------------------------------------------
    def _flush(self: NodeCore, now: int) -> list[Effect]:
        if self.inflight is not None:
            return []
        self._now = now
        # Place groups against the view as it will be once the outbox commits, so that a
        # NodeDown and the moves of that node's groups land in one batch (invariant 4).
        self.outbox += self._reconcile(self._speculative_view())
        if not self.outbox:
            return []
        self.batches += 1
        batch_id = f"{self.id}:{self.epoch}:{self.batches}"
        drafts = tuple(self.outbox)
        self.inflight = (batch_id, self.waiters, drafts)
        self.outbox, self.waiters = [], []
        return [Send(m.elm_addr(self.id), m.Propose(epoch=self.epoch, drafts=drafts, batch_id=batch_id))]

    def _batch_committed(self: NodeCore, batch_id: str, records: tuple, now: int) -> list[Effect]:
        if self.inflight is None or self.inflight[0] != batch_id:
            return []
        waiters = self.inflight[1]
        self.inflight = None
        return [Send(to, m.AdminReply(request_id=rid, ok=True, seq=records[-1].seq)) for rid, to in waiters]

    def _answer_waiters(self: NodeCore, ok: bool, seq: int | None, **err: Any) -> list[Effect]:
        waiters = list(self.waiters) + (list(self.inflight[1]) if self.inflight else [])
        self.waiters = []
        return [Send(to, m.AdminReply(request_id=rid, ok=ok, seq=seq, **err)) for rid, to in waiters]

    def _proposal_failed(self: NodeCore, msg: m.ProposalFailed, now: int, sender: str) -> list[Effect]:
        if self.role != "leader" or self.inflight is None or self.inflight[0] != msg.batch_id:
            return []
        # Fenced: a newer epoch exists. Conflict: the log moved without us. Either way our
        # picture is stale; step down and let the quorum decide again.
        return self._step_down(now, f"append {msg.reason}")

    # --- liveness of the leader itself --------------------------------------------------------
    def _leader_tick(self: NodeCore, now: int) -> list[Effect]:
        if now >= self.lease_until:
            return self._step_down(now, "quorum lease expired")
        out = self._count_misses(now)
        self._check_lag(now, out)
        return out

    def _renew(self: NodeCore, now: int) -> list[Effect]:
        """Renew several times per lease, so one slow answer does not cost the leadership."""
        if self.role != "leader":
            return []
        if now >= self.lease_until:
            return self._step_down(now, "quorum lease expired")
        period = max(self.settings.lease_ms // RENEWS_PER_LEASE, 1)
        return [Send(m.QUORUM, m.RenewLease(node=self.id, epoch=self.epoch, sent_at=now)),
                SetTimer(RENEW_TIMER, now + period)]

    def _lease_renewed(self: NodeCore, msg: m.LeaseRenewed, now: int, sender: str) -> list[Effect]:
        if self.role == "leader" and msg.epoch == self.epoch and msg.sent_at + self.settings.lease_ms > self.lease_until:
            self.lease_until = msg.sent_at + self.settings.lease_ms
            # Wake exactly when the lease would end, so our groups stop then and not a tick later.
            return [SetTimer(LEASE_TIMER, self.lease_until)]
        return []

    def _lease_lost(self: NodeCore, msg: m.LeaseLost, now: int, sender: str) -> list[Effect]:
        if self.role == "leader" and msg.epoch >= self.epoch:
            return self._step_down(now, "quorum lease lost")
        return []

    # --- failure detection and regroup (S22) ------------------------------------------------------
    def _on_heartbeat(self: NodeCore, msg: m.Heartbeat, now: int, sender: str) -> list[Effect]:
        if self.role != "leader":
            return []
        if msg.epoch > self.epoch:
            return self._step_down(now, f"{msg.node} knows epoch {msg.epoch}")
        if msg.fenced or msg.node == self.suspect or msg.node in self._leaving_pending():
            # Fenced: it lost contact and stopped its groups; it must rejoin, and this heartbeat
            # is no proof of contact (if our answers do not reach it, it must be declared down).
            # Declared gone and its groups may already be moving: an ack now would let it keep
            # running them past the point the new owner starts (invariant 4). The suspect (the
            # old leader, declared down without the usual wait) must not be acked either.
            return [Send(sender, m.NotMember(leader=self.id, epoch=self.epoch))]
        if not self.view.membership.is_full_member(msg.node):
            known = self.view.membership.nodes.get(msg.node)
            if self.admitting.get(msg.node, 0) > (known.incarnation if known else 0):
                return []  # its NodeJoined is on its way
            return [Send(sender, m.NotMember(leader=self.id, epoch=self.epoch))]
        self.last_hb[msg.node] = now
        self.misses[msg.node] = 0
        self.applied[msg.node] = msg.applied_seq
        ack = m.HeartbeatAck(leader=self.id, epoch=self.epoch, committed_seq=self.view.seq, sent_at=msg.sent_at)
        return [Send(sender, ack)]

    def _count_misses(self: NodeCore, now: int) -> list[Effect]:
        interval, limit = self.settings.interval_ms, self.settings.heartbeat_misses_before_regroup
        out: list[Effect] = []
        for n in self._others():
            if n in self.exits_seen:
                continue
            count = self.misses.get(n, 0)
            if now - self.last_hb.get(n, self.leader_since) < interval * (count + 1):
                continue
            count += 1
            self.misses[n] = count
            if count <= limit:  # bounded: a dead node costs at most `limit` events
                self.outbox.append(draft(ev.HeartbeatMissed(count=count), by=self.id, node=n))
            if count >= limit and self.regroup is None:
                out += self._start_regroup(now, f"{n} missed {count} heartbeats")
        return out + self._next_miss_check(now)

    def _next_miss_check(self: NodeCore, now: int) -> list[Effect]:
        """Check for misses a few times per interval, so a miss is counted at most a fraction
        of an interval after it is due (one check per interval would add up to a whole one)."""
        step = max(self.settings.interval_ms // MISS_CHECKS_PER_INTERVAL, 1)
        return [SetTimer(MISS_TIMER, now + step)]

    def _start_regroup(self: NodeCore, now: int, reason: str) -> list[Effect]:
        self.rounds += 1
        self.regroup = {"round": self.rounds, "reason": reason, "acks": set()}
        poll = m.RegroupPoll(leader=self.id, epoch=self.epoch, round=self.rounds)
        out: list[Effect] = [Send(m.node_addr(n), poll) for n in self._others()]
        return out + [SetTimer(REGROUP_TIMER, now + self.settings.regroup_ms)]

    def _regroup_ack(self: NodeCore, msg: m.RegroupAck, now: int, sender: str) -> list[Effect]:
        if self.role == "leader" and self.regroup is not None and msg.round == self.regroup["round"]:
            self.regroup["acks"].add(msg.node)
            self.last_hb[msg.node] = max(self.last_hb.get(msg.node, 0), now)
        return []

    def _finish_regroup(self: NodeCore, now: int) -> list[Effect]:
        if self.role != "leader" or self.regroup is None:
            return []
        acks, reason = self.regroup["acks"], self.regroup["reason"]
        bound = self.settings.failover_bound_ms
        down = [n for n in self._others() if n not in acks and n not in self.exits_seen
                and (n == self.suspect or now - self.last_hb.get(n, self.leader_since) >= bound)]
        online = sorted({self.id, *(n for n in self._others() if n not in down)})
        self.outbox.append(draft(ev.Regrouped(online=tuple(online), down=tuple(down), reason=reason), by=self.id))
        self.outbox += [draft(ev.NodeDown(reason="no answer to regroup"), by=self.id, node=n) for n in down]
        for n in online:
            self.misses[n] = 0
        self.regroup, self.suspect = None, None
        return []

    def _check_lag(self: NodeCore, now: int, out: list[Effect]) -> None:
        """S20: a member whose replica stays too far behind is evicted."""
        head = self.view.seq
        for n in self._others():
            if head - self.applied.get(n, head) <= self.settings.evict_lag_events:
                self.lag_since.pop(n, None)
                continue
            since = self.lag_since.setdefault(n, now)
            if now - since >= self.settings.evict_after_ms and not self._queued(n, "NodeEvicted"):
                reason = f"lagging: applied {self.applied[n]} of {head}"
                self.outbox.append(draft(ev.NodeEvicted(reason=reason), by=self.id, node=n))
                out.append(Send(m.node_addr(n), m.EvictNotice(node=n, reason=reason)))

    def _queued(self: NodeCore, node: str, type_name: str) -> bool:
        return any(d.node == node and d.event.type == type_name for d in self._pending_drafts())

    def _member_exited(self: NodeCore, node: str, now: int) -> list[Effect]:
        """S21/S22: a planned leave: record it and move its groups. No regroup."""
        if self.view.membership.is_full_member(node) and node not in self._leaving_pending():
            self.outbox.append(draft(ev.NodeExited(), by=self.id, node=node))
        return []

    # --- joins and forwarded decisions --------------------------------------------------------------
    def _join_approved(self: NodeCore, msg: m.JoinApproved, now: int, sender: str) -> list[Effect]:
        if self.role != "leader" or not self.view.config.is_member(msg.joiner):
            return []
        node = self.view.membership.nodes.get(msg.joiner)
        incarnation = (node.incarnation if node else 0) + 1
        if self.admitting.get(msg.joiner, 0) >= incarnation:
            return []
        self.admitting[msg.joiner] = incarnation
        self.exits_seen.discard(msg.joiner)
        s = msg.sponsor
        self.outbox += [
            draft(ev.JoinRequested(sponsor=s, replica_seq=msg.their_seq), by=s, node=msg.joiner),
            draft(ev.NodeAuthenticated(sponsor=s), by=s, node=msg.joiner),
            draft(ev.ConfigDbSynced(sponsor=s, mode=msg.mode, from_seq=msg.from_seq, to_seq=msg.to_seq), by=s, node=msg.joiner),
            draft(ev.NodeJoined(incarnation=incarnation), by=self.id, node=msg.joiner),
        ]
        self.last_hb[msg.joiner], self.misses[msg.joiner] = now, 0
        self.applied[msg.joiner] = msg.to_seq
        return []

    def _forwarded(self: NodeCore, msg: m.ForwardDrafts, now: int, sender: str) -> list[Effect]:
        if self.role == "leader":
            self.outbox += [d for d in msg.drafts if d.event.type == "JoinRejected"]
        return []

    # --- resource groups ----------------------------------------------------------------------------
    def _speculative_view(self: NodeCore) -> ClusterState:
        """The view as it will be once everything we decided commits (we are the only writer)."""
        drafts = self._pending_drafts()
        if not drafts:
            return self.view
        base = self.view.seq
        pending = [Record(base + i + 1, self.epoch, "", d.node, d.by, d.event, "") for i, d in enumerate(drafts)]
        return proj.fold(self.view, pending)

    def _reconcile(self: NodeCore, view: ClusterState) -> list[Draft]:
        """Keep every group on one live owner, never two (invariant 4).

        A group leaves a live owner in two steps: released (GroupStateChanged Offline), then
        placed once the old owner has provably stopped it (`_has_stopped`). A dead owner's
        groups move in the same batch that declares it down: the timing rule already proves it.
        """
        mv, cfg = view.membership, view.config
        load = load_of(mv)
        out: list[Draft] = []
        for name in sorted(cfg.groups):
            group, gv = cfg.groups[name], mv.groups.get(name)
            if gv is None:
                continue
            if gv.owner is not None and mv.is_full_member(gv.owner):
                target = self.moving.get(name) or (better_preferred(group, gv.owner, mv) if group.failback else None)
                if target not in (None, gv.owner) and mv.nodes[target].state == "Online":
                    self.moving[name] = target
                    out.append(self._release(name, f"moving to {target}"))
                continue
            prev = gv.owner or gv.last_owner
            if prev is not None and not self._has_stopped(prev, name, gv.since_seq, view):
                if gv.owner is not None:  # its owner is gone but may still run it: release, wait
                    out.append(self._release(name, f"owner {prev} left; waiting for it to stop"))
                continue
            wanted = self.moving.pop(name, None)
            target = wanted if wanted and mv.nodes.get(wanted) and mv.nodes[wanted].state == "Online" else place(group, mv, load)
            if target is None and gv.owner is None:
                continue
            if target is not None:
                load[target] = load.get(target, 0) + 1
            reason = "failover" if gv.owner is not None else ("moved" if wanted else "placed")
            out.append(draft(ev.GroupMoved(group=name, from_node=gv.owner, to_node=target, reason=reason), by=self.id))
        return out

    def _release(self: NodeCore, group: str, reason: str) -> Draft:
        return draft(ev.GroupStateChanged(group=group, state="Offline", reason=reason), by=self.id)

    def _has_stopped(self: NodeCore, node: str, group: str, release_seq: int, view: ClusterState) -> bool:
        """Proof that `node` no longer runs `group`, which it owned until `release_seq`."""
        if node == self.id:
            # Followers may read a release from the quorum log before we hear that our append
            # succeeded, so ours is stopped only once it is not running here and our committed
            # view no longer gives it to us (a leader that is leaving still runs its groups).
            committed = self.view.membership.groups.get(group)
            return group not in self.running and (committed is None or committed.owner != self.id)
        if node in self.exits_seen:
            return True  # an exiting node stops its groups before it says so
        if view.membership.is_full_member(node) and self.applied.get(node, 0) >= release_seq:
            return True  # it applied the release, and a node runs only what its view gives it
        # Silent for interval x misses: its leader contact ran out, so it fenced itself (S8c).
        return self._now - self.last_hb.get(node, self.leader_since) >= self.settings.detection_ms

    # --- admin commands ------------------------------------------------------------------------------
    def _leader_admin(self: NodeCore, msg: m.AdminCommand, now: int) -> list[Effect]:
        from actors.admin import decide

        if msg.request_id in self.seen_requests:
            return []  # a duplicate delivery: the first copy is answered
        self.seen_requests[msg.request_id] = None
        if len(self.seen_requests) > SEEN_REQUESTS_MAX:
            self.seen_requests.pop(next(iter(self.seen_requests)))
        result = decide(self, msg, now)
        if isinstance(result, m.AdminReply):
            return [Send(msg.reply_to, result)]
        drafts, effects = result
        if drafts:  # answered once they commit; a forwarded leave is answered by the node itself
            self.outbox += drafts
            self.waiters.append((msg.request_id, msg.reply_to))
        return effects
