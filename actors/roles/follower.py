"""Roles FOLLOWER and SEARCHING: a member that is not the leader.

A follower heartbeats the leader every interval and runs its groups while the leader's
acks are fresh: until `sent_at + interval x misses` of its last acknowledged heartbeat (S8c).
No ack for interval x misses → SEARCHING: it marks itself fenced, asks the Quorum every
tick and keeps heartbeating whoever it thinks leads; its groups stop when contact runs out.
An ack or a regroup poll from a leader makes it a follower again; `NotMember` makes it rejoin.
"""

from __future__ import annotations

from actors import messages as m
from actors.effects import Effect, Send, SetTimer
from actors.node_state import NodeState, Role, Timer, acquire, heartbeat
from actors.roles import exiting, joining

ADMIN_FORWARD_MAX_HOPS = 3


def become_searching(node: NodeState, now: int) -> list[Effect]:
    """Keep the Following state (contact), ask the Quorum (S8b)."""
    node.become(Role.SEARCHING, node.following)
    return acquire(node, now)


def tick_follower(node: NodeState, now: int) -> list[Effect]:
    if node.leader in (None, node.id) or now - node.following.leader_heard_at >= node.settings.detection_ms:
        return lost_leader(node, now)  # (no leader known: e.g. it left; look for the next)
    return [heartbeat(node, now)]


def tick_searching(node: NodeState, now: int) -> list[Effect]:
    out = acquire(node, now)
    return out + ([heartbeat(node, now)] if node.leader not in (None, node.id) else [])


def lost_leader(node: NodeState, now: int) -> list[Effect]:
    """S8c: no contact with the leader for interval x misses: self-fence, look for the quorum."""
    node.fenced = True  # until we rejoin: our heartbeats say so (see leader.on_heartbeat)
    out = become_searching(node, now)
    return out + ([heartbeat(node, now)] if node.leader not in (None, node.id) else [])


def on_heartbeat_ack(node: NodeState, msg: m.HeartbeatAck, now: int, sender: str) -> list[Effect]:
    node.epoch, node.leader = msg.epoch, msg.leader
    node.become(Role.FOLLOWER, node.following)
    f = node.following
    f.leader_heard_at = now
    out: list[Effect] = []
    if msg.committed_seq > node.view.seq:  # a push was lost: fetch what we miss
        out.append(Send(m.elm_addr(node.id), m.CatchUp(target_seq=msg.committed_seq)))
    # The leader heard us at or after `sent_at`; it waits detection past its last heartbeat
    # before moving our groups, so we may run them until sent_at + detection, shortened by the
    # clock-drift bound (our clock may run slow against the leader's).
    until = msg.sent_at + node.settings.contact_ms
    if until > f.contact_until:
        f.contact_until = until
        out.append(SetTimer(Timer.CONTACT, until))
    return out


def on_not_member(node: NodeState, msg: m.NotMember, now: int, sender: str) -> list[Effect]:
    node.epoch, node.leader = msg.epoch, msg.leader
    return joining.begin_join(node, now)


def on_regroup_poll(node: NodeState, msg: m.RegroupPoll, now: int, sender: str) -> list[Effect]:
    """S22: answer the leader's poll; it is proof of contact for a searching node."""
    node.epoch, node.leader = msg.epoch, msg.leader
    ack = m.RegroupAck(node=node.id, epoch=msg.epoch, round=msg.round, sent_at=now)
    return [Send(m.node_addr(msg.leader), ack)]


def on_regroup_poll_searching(node: NodeState, msg: m.RegroupPoll, now: int, sender: str) -> list[Effect]:
    node.become(Role.FOLLOWER, node.following)
    node.following.leader_heard_at = now
    return on_regroup_poll(node, msg, now, sender)


def on_admin(node: NodeState, msg: m.AdminCommand, now: int, sender: str) -> list[Effect]:
    """Forward to the leader we know (a bounded number of hops: two nodes that each think
    the other leads must not bounce a command forever)."""
    if node.leader is not None and node.leader != node.id and msg.hops < ADMIN_FORWARD_MAX_HOPS:
        return [Send(m.node_addr(node.leader), msg.model_copy(update={"hops": msg.hops + 1}))]
    return exiting.no_leader(node, msg)


def on_cluster_exit(node: NodeState, msg: m.ClusterExit, now: int, sender: str) -> list[Effect]:
    node.exits_seen.add(msg.node)
    if msg.node == node.leader:
        # The leader left on purpose and released the quorum: take over now, keep our groups.
        return become_searching(node, now)
    return joining.relay_exit(node, msg)
