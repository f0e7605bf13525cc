"""Joining and forming (S5, S13–S18), both sides: the joiner and its sponsor.

Joiner: Discover to every known member → the first full member that answers is the
sponsor → JoinRequest(replica seq, hash) → answer the sponsor's nonce with an HMAC →
its replica is synced (delta or full) → the leader appends NodeJoined → Online.
Nobody answers → ask the Quorum for ownership and form the cluster (S5).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from actors import messages as m
from actors.auth import check_mac, join_mac
from actors.effects import Effect, Send, SetTimer
from events import types as ev
from events.record import draft

if TYPE_CHECKING:
    from actors.node import NodeCore

DISCOVERY_TIMER = "discovery"
DISCOVERY_FANOUT = 8


class JoiningMixin:
    def _init_joining(self: NodeCore) -> None:
        self.sponsor: str | None = None
        self.discovery_attempts = 0
        self.join_started = 0
        self.join_base_incarnation = 0
        self.rejected_until = 0
        self.challenges: dict[str, tuple[str, m.JoinRequest]] = {}  # joiner -> (nonce, request)
        self.rejection_window_start = -(10**12)
        self.rejections_in_window = 0
        self.rejections_suppressed = 0

    def _known_peers(self: NodeCore) -> list[str]:
        """At most DISCOVERY_FANOUT peers per attempt, a different slice each time: discovery
        costs O(1) messages per join, not O(members), and every peer is tried in turn."""
        peers = set(self.view.config.members) | set(self.identity.peers)
        peers.discard(self.id)
        ordered = sorted(peers, key=lambda p: hashlib.blake2b(f"{self.id}|{p}".encode(), digest_size=8).digest())
        if len(ordered) <= DISCOVERY_FANOUT:
            return ordered
        start = (self.discovery_attempts * DISCOVERY_FANOUT) % len(ordered)
        self.discovery_attempts += 1
        return (ordered + ordered)[start:start + DISCOVERY_FANOUT]

    def _begin_join(self: NodeCore, now: int) -> list[Effect]:
        self.role = "joining"
        self.sponsor = None
        self.join_started = now
        self.contact_until = 0  # a new incarnation runs groups only on acks of its own heartbeats
        me = self.view.membership.nodes.get(self.id)
        self.join_base_incarnation = me.incarnation if me is not None else 0
        probe = m.Discover(node=self.id, cluster_id=self.identity.cluster_id)
        out: list[Effect] = [Send(m.node_addr(p), probe) for p in self._known_peers()]
        return out + [SetTimer(DISCOVERY_TIMER, now + self.settings.discovery_ms)]

    def _join_tick(self: NodeCore, now: int) -> list[Effect]:
        if self.role == "rejected" and now >= self.rejected_until:
            return self._begin_join(now)
        if self.role in ("joining", "forming", "taking_over") and now - self.join_started >= self.settings.join_ms:
            return self._begin_join(now)  # a lost message somewhere: start over
        return []

    def _join_timer(self: NodeCore, key: str, now: int) -> list[Effect]:
        if key == DISCOVERY_TIMER and self.role == "joining" and self.sponsor is None:
            self.join_started = now
            return self._ask_quorum(now, "forming")  # S5: nobody answered
        if key == "regroup":
            return self._finish_regroup(now)
        return []

    # --- joiner side -------------------------------------------------------------------------
    def _discover_reply(self: NodeCore, msg: m.DiscoverReply, now: int, sender: str) -> list[Effect]:
        if self.role != "joining" or self.sponsor is not None:
            return []
        self.sponsor = msg.member  # S15: the first member found sponsors us
        req = m.JoinRequest(node=self.id, cluster_id=self.identity.cluster_id,
                            replica_seq=self.view.seq, replica_hash=self.view.hash)
        return [Send(m.node_addr(msg.member), req)]

    def _join_challenge(self: NodeCore, msg: m.JoinChallenge, now: int, sender: str) -> list[Effect]:
        if self.role != "joining" or msg.sponsor != self.sponsor:
            return []
        mac = join_mac(self.identity.secret, msg.nonce, self.id, self.identity.cluster_id)
        return [Send(m.node_addr(msg.sponsor), m.JoinResponse(node=self.id, mac=mac))]

    def _join_refused(self: NodeCore, msg: m.JoinRefused, now: int, sender: str) -> list[Effect]:
        if self.role == "joining" and msg.sponsor == self.sponsor:
            self.role = "rejected"  # S16
            self.rejected_until = now + self.settings.rejection_backoff_ms
        return []

    def _check_admitted(self: NodeCore, now: int) -> list[Effect]:
        me = self.view.membership.nodes.get(self.id)
        if me is None or me.state not in ("Online", "Paused") or me.incarnation <= self.join_base_incarnation:
            return []
        self.role = "follower"
        self.fenced = False
        self.leader_heard_at = now  # the leader has this long to answer our first heartbeat
        self.epoch = max(self.epoch, self.view.membership.epoch)  # epochs only grow (invariant 1)
        self.leader = self.view.membership.leader
        return [self._heartbeat(now)] if self.leader not in (None, self.id) else []

    # --- forming (S5) ------------------------------------------------------------------------
    def _granted(self: NodeCore, msg: m.QuorumGranted, now: int, sender: str) -> list[Effect]:
        if self.role not in ("forming", "searching", "joining") or msg.epoch <= self.epoch:
            return []  # (a stale or duplicated grant)
        self.role = "taking_over"
        self.epoch = msg.epoch
        self.lease_until = msg.sent_at + msg.lease_ms
        self.join_started = now
        return [Send(m.elm_addr(self.id), m.CatchUp(target_seq=msg.head_seq))]

    def _caught_up(self: NodeCore, msg: m.CaughtUp, now: int, sender: str) -> list[Effect]:
        if self.role != "taking_over":
            return []
        if self.view.seq == 0 and self.create is None:
            # An empty quorum log: only the creator may form the cluster (S1, S5). Give it back.
            release = Send(m.QUORUM, m.ReleaseQuorum(node=self.id, epoch=self.epoch))
            return [release] + self._begin_join(now)
        return self._become_leader(now)

    def _denied(self: NodeCore, msg: m.QuorumDenied, now: int, sender: str) -> list[Effect]:
        if msg.owner is not None and msg.owner != self.id:
            self.leader = msg.owner  # a hint: somebody leads; follow or join them
        if self.role == "forming":
            if self.create is not None and self.view.seq == 0:
                return []  # keep asking on the next tick: the creator must form the cluster
            return self._begin_join(now)
        return []

    # --- sponsor side (S15–S17) ----------------------------------------------------------------
    def _discover(self: NodeCore, msg: m.Discover, now: int, sender: str) -> list[Effect]:
        if self.role not in ("leader", "follower") or msg.cluster_id != self.identity.cluster_id:
            return []
        reply = m.DiscoverReply(member=self.id, leader=self.leader, epoch=self.epoch)
        return [Send(m.node_addr(msg.node), reply)]

    def _join_request(self: NodeCore, msg: m.JoinRequest, now: int, sender: str) -> list[Effect]:
        if self.role not in ("leader", "follower"):
            return []
        if msg.cluster_id != self.identity.cluster_id:
            return self._reject(msg.node, "wrong_cluster", now)
        nonce = self.nonces.next()
        self.challenges[msg.node] = (nonce, msg)
        return [Send(m.node_addr(msg.node), m.JoinChallenge(sponsor=self.id, nonce=nonce))]

    def _join_response(self: NodeCore, msg: m.JoinResponse, now: int, sender: str) -> list[Effect]:
        pending = self.challenges.pop(msg.node, None)
        if pending is None or self.role not in ("leader", "follower"):
            return []
        nonce, req = pending
        cfg = self.view.config
        if not cfg.is_member(msg.node):
            return self._reject(msg.node, "evicted" if msg.node in cfg.evicted else "unknown_member", now)
        if not check_mac(self.identity.secret, nonce, msg.node, self.identity.cluster_id, msg.mac):
            return self._reject(msg.node, "bad_credentials", now)
        sync = m.SendSync(joiner=msg.node, their_seq=req.replica_seq, their_hash=req.replica_hash)
        return [Send(m.elm_addr(self.id), sync)]

    def _sync_sent(self: NodeCore, msg: m.SyncSent, now: int, sender: str) -> list[Effect]:
        if self.leader is None:
            return []
        approved = m.JoinApproved(joiner=msg.joiner, sponsor=self.id, mode=msg.mode,
                                  from_seq=msg.from_seq, to_seq=msg.to_seq, their_seq=msg.their_seq)
        return [Send(m.node_addr(self.leader), approved)]

    def _reject(self: NodeCore, joiner: str, reason: str, now: int) -> list[Effect]:
        """S16: refuse, and record it — at most N rejection events per window, the rest counted."""
        out: list[Effect] = [Send(m.node_addr(joiner), m.JoinRefused(sponsor=self.id, reason=reason))]
        if now - self.rejection_window_start >= self.settings.rejection_window_ms:
            self.rejection_window_start, self.rejections_in_window = now, 0
        if self.rejections_in_window >= self.settings.join_rejections_logged_per_window:
            self.rejections_suppressed += 1
            return out
        self.rejections_in_window += 1
        event = ev.JoinRejected(sponsor=self.id, reason=reason, suppressed=self.rejections_suppressed)  # type: ignore[arg-type]
        self.rejections_suppressed = 0
        d = draft(event, by=self.id, node=joiner)
        if self.role == "leader":
            self.outbox.append(d)
        elif self.leader is not None:
            out.append(Send(m.node_addr(self.leader), m.ForwardDrafts(drafts=(d,))))
        return out
