"""The sponsor side of a join (S15–S17), taken by a leader or a follower.

Discover → DiscoverReply; JoinRequest → a nonce (JoinChallenge); JoinResponse → checks in
order: unknown member (`evicted` if it was), bad credentials; then the ELM syncs the
joiner's replica (delta or full) and the leader is told (JoinApproved).
"""

from __future__ import annotations

from actors import messages as m
from actors.auth import check_mac
from actors.effects import Effect, Send
from actors.node_state import SPONSOR_ROLES, NodeState, Role
from events import types as ev
from events.record import draft


def on_discover(node: NodeState, msg: m.Discover, now: int, sender: str) -> list[Effect]:
    if msg.cluster_id != node.identity.cluster_id:
        return []
    reply = m.DiscoverReply(member=node.id, leader=node.leader, epoch=node.epoch)
    return [Send(m.node_addr(msg.node), reply)]


def on_join_request(node: NodeState, msg: m.JoinRequest, now: int, sender: str) -> list[Effect]:
    if msg.cluster_id != node.identity.cluster_id:
        return reject(node, msg.node, "wrong_cluster", now)
    pending = node.sponsoring.challenges.get(msg.node)
    if pending is not None and pending[1] == msg:
        nonce = pending[0]  # a duplicate of the pending request: the same challenge again
    else:
        nonce = node.nonces.next()
        node.sponsoring.challenges[msg.node] = (nonce, msg)
    return [Send(m.node_addr(msg.node), m.JoinChallenge(sponsor=node.id, nonce=nonce))]


def on_join_response(node: NodeState, msg: m.JoinResponse, now: int, sender: str) -> list[Effect]:
    pending = node.sponsoring.challenges.get(msg.node)
    if pending is None or pending[0] != msg.nonce:
        return []  # an answer to a challenge no longer pending (a duplicate, or stale): no verdict
    del node.sponsoring.challenges[msg.node]
    if node.role not in SPONSOR_ROLES:
        return []  # (a node that is no longer a sponsor forgets the challenge)
    nonce, req = pending
    cfg = node.view.config
    if not cfg.is_member(msg.node):
        return reject(node, msg.node, "evicted" if msg.node in cfg.evicted else "unknown_member", now)
    if not check_mac(node.identity.secret, nonce, msg.node, node.identity.cluster_id, msg.mac):
        return reject(node, msg.node, "bad_credentials", now)
    sync = m.SendSync(joiner=msg.node, their_seq=req.replica_seq, their_hash=req.replica_hash,
                      seen_incarnation=req.seen_incarnation)
    return [Send(m.elm_addr(node.id), sync)]


def on_sync_sent(node: NodeState, msg: m.SyncSent, now: int, sender: str) -> list[Effect]:
    """Our ELM sent the joiner its copy: the leader admits it (in whatever role we are now)."""
    if node.leader is None:
        return []
    approved = m.JoinApproved(joiner=msg.joiner, sponsor=node.id, mode=msg.mode,
                              from_seq=msg.from_seq, to_seq=msg.to_seq, their_seq=msg.their_seq,
                              seen_incarnation=msg.seen_incarnation)
    return [Send(m.node_addr(node.leader), approved)]


def reject(node: NodeState, joiner: str, reason: str, now: int) -> list[Effect]:
    """S16: refuse, and record it — at most N rejection events per window, the rest counted."""
    s, settings = node.sponsoring, node.settings
    out: list[Effect] = [Send(m.node_addr(joiner), m.JoinRefused(sponsor=node.id, reason=reason))]
    if now - s.rejection_window_start >= settings.rejection_window_ms:
        s.rejection_window_start, s.rejections_in_window = now, 0
    if s.rejections_in_window >= settings.join_rejections_logged_per_window:
        s.rejections_suppressed += 1
        return out
    s.rejections_in_window += 1
    event = ev.JoinRejected(sponsor=node.id, reason=reason, suppressed=s.rejections_suppressed)  # type: ignore[arg-type]
    s.rejections_suppressed = 0
    d = draft(event, by=node.id, node=joiner)
    if node.role == Role.LEADER:
        node.lead.outbox.append(d)
    elif node.leader is not None:
        out.append(Send(m.node_addr(node.leader), m.ForwardDrafts(drafts=(d,))))
    return out
