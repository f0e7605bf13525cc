"""Leaving the cluster (S19, S21) and being evicted (S20): the roles EXITED and EVICTED."""

from __future__ import annotations

from actors import messages as m
from actors.effects import Effect, Send, SetTimer, StopService
from actors.groups import stop_all_groups
from actors.node_state import STOPPED_ROLES, NodeState, Role, Timer

EXIT_STOP_MARGIN_INTERVALS = 1  # beyond the resources' stop timeouts, before a leave goes all the same


def begin_exit(node: NodeState, now: int) -> list[Effect]:
    """S21, issue 13: a decided leave first stops our groups (`desired_groups` is empty while
    leaving); `ready_to_exit` says when to tell the others. Bounded: every resource gets its
    stop timeout, in dependency order, plus one interval; then we go all the same (the shell
    stops whatever is left with the service)."""
    node.leaving = True
    if node.exit_at is None:
        node.exit_at = now + stop_bound_ms(node)
    return [SetTimer(Timer.LEAVE, node.exit_at)]


def stop_bound_ms(node: NodeState) -> int:
    """How long our groups may take to stop: per group, its resources one after another."""
    per_group = [sum(r.spec.stop_timeout_ms for r in run.resources.values() if r.phase != "stopped")
                 for run in node.runner.groups.values()]
    return max(per_group, default=0) + EXIT_STOP_MARGIN_INTERVALS * node.settings.interval_ms


def ready_to_exit(node: NodeState, now: int) -> bool:
    return (node.exit_at is not None and node.role not in STOPPED_ROLES
            and (not node.runner.groups or now >= node.exit_at))


def leave(node: NodeState, now: int) -> list[Effect]:
    """S21: ClusterExit to every other member (no waiting for answers), then stop the service.

    Called once our groups have stopped (`ready_to_exit`), or their stop bound ran out: the
    leader takes a ClusterExit as proof that our groups have stopped, so no ClusterExit or
    ReleaseQuorum leaves while a resource of ours still runs (issue 13)."""
    mv = node.view.membership
    members = [n for n in mv.nodes if n != node.id and mv.is_full_member(n)]
    was_leader = node.role == Role.LEADER
    node.become(Role.EXITED, None)
    node.stopped_reason = "left the cluster (ClusterExit)"
    out: list[Effect] = stop_all_groups(node, now)  # past the bound: whatever still runs
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
