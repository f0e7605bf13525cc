"""Roles JOINING, FORMING, TAKING_OVER and REJECTED: the joiner's side of S13–S18 and
forming the cluster (S5).

Joining: Discover to known members → the first full member that answers is the sponsor →
JoinRequest(replica seq, hash) → answer the sponsor's nonce with an HMAC → the replica is
synced (delta or full) → the leader appends NodeJoined → FOLLOWER. Nobody answers → FORMING:
ask the Quorum for ownership; granted → TAKING_OVER: catch the replica up to the quorum
log's head → LEADER. Refused → REJECTED for a back-off, then join again.
"""

from __future__ import annotations

import hashlib

from actors import messages as m
from actors.auth import join_mac
from actors.effects import Effect, Send, SetTimer
from actors.node_state import (Following, Forming, JoinAttempt, NodeState, Rejected, Role, TakingOver,
                               Timer, acquire, heartbeat)
from actors.roles import leader

DISCOVERY_FANOUT = 8


def _known_peers(node: NodeState) -> list[str]:
    """At most DISCOVERY_FANOUT peers per attempt, a different slice each time: discovery
    costs O(1) messages per join, not O(members), and every peer is tried in turn."""
    peers = frozenset(node.view.config.members).union(node.identity.peers).difference((node.id,))
    if node.peer_order is not None and node.peer_order[0] == peers:
        ordered = node.peer_order[1]  # (a hash per peer per attempt: 1,000 of them at 1,000 nodes)
    else:
        ordered = sorted(peers, key=lambda p: hashlib.blake2b(f"{node.id}|{p}".encode(), digest_size=8).digest())
        node.peer_order = (peers, ordered)
    if len(ordered) <= DISCOVERY_FANOUT:
        return ordered
    start = (node.discovery_attempts * DISCOVERY_FANOUT) % len(ordered)
    node.discovery_attempts += 1
    return (ordered + ordered)[start:start + DISCOVERY_FANOUT]


def begin_join(node: NodeState, now: int) -> list[Effect]:
    """S13/S14: a new attempt. A new incarnation runs groups only on acks of its own heartbeats."""
    me = node.view.membership.nodes.get(node.id)
    node.become(Role.JOINING, JoinAttempt(started_at=now, base_incarnation=me.incarnation if me is not None else 0))
    probe = m.Discover(node=node.id, cluster_id=node.identity.cluster_id)
    out: list[Effect] = [Send(m.node_addr(p), probe) for p in _known_peers(node)]
    return out + [SetTimer(Timer.DISCOVERY, now + node.settings.discovery_ms)]


def begin_forming(node: NodeState, now: int, started_at: int) -> list[Effect]:
    """S5: nobody answered (or we create the cluster): ask the Quorum for ownership."""
    node.become(Role.FORMING, Forming(started_at=started_at))
    return acquire(node, now)


# --- time ------------------------------------------------------------------------------------------
def tick_rejected(node: NodeState, now: int) -> list[Effect]:
    assert isinstance(node.role_state, Rejected)
    return begin_join(node, now) if now >= node.role_state.until else []


def tick_pending(node: NodeState, now: int) -> list[Effect]:
    """JOINING, FORMING, TAKING_OVER: a lost message somewhere stalls us; start over."""
    assert isinstance(node.role_state, (JoinAttempt, Forming, TakingOver))
    return begin_join(node, now) if now - node.role_state.started_at >= node.settings.join_ms else []


def on_discovery_timer(node: NodeState, now: int) -> list[Effect]:
    attempt = node.role_state
    assert isinstance(attempt, JoinAttempt)
    return begin_forming(node, now, started_at=now) if attempt.sponsor is None else []


# --- the joiner ------------------------------------------------------------------------------------
def _attempt(node: NodeState) -> JoinAttempt:
    assert isinstance(node.role_state, JoinAttempt), node.role
    return node.role_state


def on_discover_reply(node: NodeState, msg: m.DiscoverReply, now: int, sender: str) -> list[Effect]:
    attempt = _attempt(node)
    if attempt.sponsor is not None:
        return []
    attempt.sponsor = msg.member  # S15: the first member found sponsors us
    req = m.JoinRequest(node=node.id, cluster_id=node.identity.cluster_id,
                        replica_seq=node.view.seq, replica_hash=node.view.hash,
                        seen_incarnation=attempt.base_incarnation)
    return [Send(m.node_addr(msg.member), req)]


def on_join_challenge(node: NodeState, msg: m.JoinChallenge, now: int, sender: str) -> list[Effect]:
    if msg.sponsor != _attempt(node).sponsor:
        return []
    mac = join_mac(node.identity.secret, msg.nonce, node.id, node.identity.cluster_id)
    return [Send(m.node_addr(msg.sponsor), m.JoinResponse(node=node.id, mac=mac, nonce=msg.nonce))]


def on_join_refused(node: NodeState, msg: m.JoinRefused, now: int, sender: str) -> None:
    if msg.sponsor == _attempt(node).sponsor:
        node.become(Role.REJECTED, Rejected(until=now + node.settings.rejection_backoff_ms))  # S16


def on_replica_moved(node: NodeState, now: int, fresh: bool) -> list[Effect]:
    """The committed log moved while we join: a large copy may take a while (the join is
    not stuck); our NodeJoined may be in it."""
    if fresh:
        _attempt(node).started_at = now
    return check_admitted(node, now)


def check_admitted(node: NodeState, now: int) -> list[Effect]:
    me = node.view.membership.nodes.get(node.id)
    if me is None or me.state not in ("Online", "Paused") or me.incarnation <= _attempt(node).base_incarnation:
        return []
    # The leader has a detection time to answer our first heartbeat.
    node.become(Role.FOLLOWER, Following(contact_until=0, leader_heard_at=now))
    node.fenced = False
    node.epoch = max(node.epoch, node.view.membership.epoch)  # epochs only grow (invariant 1)
    node.leader = node.view.membership.leader
    return [heartbeat(node, now)] if node.leader not in (None, node.id) else []


def on_replaced(node: NodeState) -> None:
    """S17: a full copy replaced our replica: admission counts from its incarnation of us,
    or from the one we told the sponsor if lower (the copy may hold an admission of this very
    join we never heard: the leader does not admit us twice, so that one counts)."""
    if isinstance(node.role_state, JoinAttempt):
        me = node.view.membership.nodes.get(node.id)
        node.role_state.base_incarnation = min(node.role_state.base_incarnation,
                                               me.incarnation if me is not None else 0)


# --- forming (S5) ----------------------------------------------------------------------------------
def on_granted(node: NodeState, msg: m.QuorumGranted, now: int, sender: str) -> list[Effect]:
    if msg.epoch <= node.epoch:
        return []  # (a stale or duplicated grant)
    # Shortened like every renewal; a follower keeps its leader contact while it catches up:
    # its groups keep running (issue 13).
    lease_until = msg.sent_at + node.settings.trusted_lease_ms(msg.lease_ms)
    node.become(Role.TAKING_OVER, TakingOver(started_at=now, lease_until=lease_until,
                                             contact_until=node.contact_until))
    node.epoch = msg.epoch
    return [Send(m.elm_addr(node.id), m.CatchUp(target_seq=msg.head_seq))]


def on_caught_up(node: NodeState, msg: m.CaughtUp, now: int, sender: str) -> list[Effect]:
    if node.view.seq == 0 and node.create is None:
        # An empty quorum log: only the creator may form the cluster (S1, S5). Give it back.
        release = Send(m.QUORUM, m.ReleaseQuorum(node=node.id, epoch=node.epoch))
        return [release] + begin_join(node, now)
    return leader.become_leader(node, now)


def on_denied(node: NodeState, msg: m.QuorumDenied, now: int, sender: str) -> None:
    """Any role: the owner named is a hint of who leads."""
    if msg.owner is not None and msg.owner != node.id:
        node.leader = msg.owner


def on_denied_forming(node: NodeState, msg: m.QuorumDenied, now: int, sender: str) -> list[Effect]:
    """Somebody else owns the quorum: join them (the creator keeps asking: it must form)."""
    on_denied(node, msg, now, sender)
    if node.create is not None and node.view.seq == 0:
        return []  # keep asking on the next tick: the creator must form the cluster
    return begin_join(node, now)


def on_cluster_exit(node: NodeState, msg: m.ClusterExit, now: int, sender: str) -> list[Effect]:
    """Not a member yet (or taking over): remember the exit, and make sure the leader we know
    of hears it (S22)."""
    node.exits_seen.add(msg.node)
    return relay_exit(node, msg)


def relay_exit(node: NodeState, msg: m.ClusterExit) -> list[Effect]:
    if node.leader not in (None, node.id, msg.node) and not msg.forwarded:
        return [Send(m.node_addr(node.leader), msg.model_copy(update={"forwarded": True}))]
    return []
