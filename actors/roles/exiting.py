"""Leaving the cluster (S19, S21) and being evicted (S20): the roles EXITED and EVICTED."""

from __future__ import annotations

from actors import messages as m
from actors.effects import Effect, Send, StopService
from actors.groups import stop_all_groups
from actors.node_state import NodeState, Role


def leave(node: NodeState, now: int) -> list[Effect]:
    """S21: stop our groups, then ClusterExit to every other member (no waiting for answers),
    then stop the service.

    The leader takes a ClusterExit as proof that our groups have stopped, so the stops come
    first in the effects: both shells carry out effects in order and finish a StopGroup
    (bounded by the resource's stop timeout) before the next effect, so no ClusterExit or
    ReleaseQuorum leaves while a group of ours still runs (issue 13)."""
    mv = node.view.membership
    members = [n for n in mv.nodes if n != node.id and mv.is_full_member(n)]
    was_leader = node.role == Role.LEADER
    node.become(Role.EXITED, None)
    node.stopped_reason = "left the cluster (ClusterExit)"
    out: list[Effect] = stop_all_groups(node, now)
    out += [Send(m.node_addr(n), m.ClusterExit(node=node.id, epoch=node.epoch)) for n in sorted(members)]
    if was_leader:  # let a follower take over at once instead of waiting out the lease
        out.append(Send(m.QUORUM, m.ReleaseQuorum(node=node.id, epoch=node.epoch)))
    return out + [StopService(node.stopped_reason)]


def evicted(node: NodeState, reason: str, now: int) -> list[Effect]:
    node.become(Role.EVICTED, None)
    node.stopped_reason = reason
    return stop_all_groups(node, now) + [StopService(reason)]


def stopped_reply(node: NodeState, msg: m.Message) -> list[Effect]:
    """A stopped node answers only admin clients (so they are not left waiting)."""
    if isinstance(msg, m.AdminCommand):
        if node.role == Role.EXITED and msg.op == "leave" and msg.args.get("node", node.id) == node.id:
            # A duplicate of the leave we carried out: it happened, so it is no failure (issue 13).
            return [Send(msg.reply_to, m.AdminReply(request_id=msg.request_id, ok=True, seq=node.view.seq))]
        return [Send(msg.reply_to, m.AdminReply(request_id=msg.request_id, ok=False, status=503,
                                                error="node_stopped", detail=f"{node.id} has {node.role}"))]
    return []


def no_leader(node: NodeState, msg: m.AdminCommand) -> list[Effect]:
    reply = m.AdminReply(request_id=msg.request_id, ok=False, status=503, error="no_leader",
                         detail=f"{node.id} knows no reachable leader (role {node.role})")
    return [Send(msg.reply_to, reply)]
