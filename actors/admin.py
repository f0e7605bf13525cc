"""Admin commands, decided by the leader: pure functions of (view, command) returning a
`Decision` — the drafts to append, messages to send, or an answer now (a rejected command is an operating error, not an exception). HTTP-style
statuses: 404 unknown node or group, 409 conflicts with the state, 422 malformed input.

The leader passes the view as it will be once its pending decisions commit, its own id,
and `stopped(node, group, release_seq, view)`: its proof that a node no longer runs a group.
"""

from __future__ import annotations

from typing import Callable

from actors import admin_groups
from actors import messages as m
from actors.admin_decision import (NAME_MAX_CHARS, NAME_PATTERN, Context, Decision, StopProof, accept, err, name_arg,
                                   release, unchanged)
from actors.effects import Send
from actors.placement import load_of, place
from events import types as ev
from events.record import Draft, draft
from projections.state import ClusterState

EVICT_REASON_MAX_CHARS = 200
STOP_REASON = "cluster stopping"  # what an operator filters a whole-cluster stop by

__all__ = ["NAME_MAX_CHARS", "NAME_PATTERN", "Decision", "StopProof", "decide", "release"]


def _member(view: ClusterState, msg: m.AdminCommand) -> str | Decision:
    name = name_arg(msg, "node")
    if isinstance(name, Decision):
        return name
    if name not in view.membership.nodes or not view.config.is_member(name):
        return err(msg, 404, "unknown_node", f"no member named {name}")
    return name


def _add_node(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = name_arg(msg, "node")
    if isinstance(name, Decision):
        return name
    if ctx.view.config.is_member(name):
        return err(msg, 409, "already_member", f"{name} is already a member")
    address = msg.args.get("address")
    return accept([draft(ev.NodeAdded(address=address if isinstance(address, str) else None), by=ctx.leader, node=name)])


def _pause(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _member(ctx.view, msg)
    if isinstance(name, Decision):
        return name
    state = ctx.view.membership.nodes[name].state
    if state != "Online":
        return err(msg, 409, "wrong_state", f"{name} is {state}; only an Online node can be paused")
    drain = bool(msg.args.get("drain", False))
    drafts = [draft(ev.NodePaused(drain=drain), by=ctx.leader, node=name)]
    if drain:  # S12: optional drain moves its groups away first
        drafts += _moves_off(ctx, name, "drain")
    return accept(drafts)


def _moves_off(ctx: Context, name: str, reason: str) -> list[Draft]:
    """Release every group of `name`, each with where it goes once released."""
    mv, cfg = ctx.view.membership, ctx.view.config
    load = load_of(mv)
    out: list[Draft] = []
    for group in mv.groups_of(name):
        target = place(cfg.groups[group], mv, load, exclude=frozenset({name})) if group in cfg.groups else None
        if target is not None:
            load[target] = load.get(target, 0) + 1
        out.append(release(group, reason, ctx.leader, moving_to=target))
    return out


def _resume(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _member(ctx.view, msg)
    if isinstance(name, Decision):
        return name
    state = ctx.view.membership.nodes[name].state
    if state != "Paused":
        return err(msg, 409, "wrong_state", f"{name} is {state}; only a Paused node can be resumed")
    return accept([draft(ev.NodeResumed(), by=ctx.leader, node=name)])


def _evict(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _member(ctx.view, msg)
    if isinstance(name, Decision):
        return name
    if name == ctx.leader:
        return err(msg, 409, "is_leader", f"{name} leads the cluster; make it leave first")
    reason = str(msg.args.get("reason") or "admin command")[:EVICT_REASON_MAX_CHARS]
    drafts = [draft(ev.NodeEvicted(reason=reason), by=ctx.leader, node=name)]
    return accept(drafts, [Send(m.node_addr(name), m.EvictNotice(node=name, reason=reason))])


def _leave(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _member(ctx.view, msg)
    if isinstance(name, Decision):
        return name
    if not ctx.view.membership.is_full_member(name):
        return err(msg, 409, "wrong_state", f"{name} is not Online or Paused")
    forwarded = msg.model_copy(update={"hops": msg.hops + 1})
    return accept([], [Send(m.node_addr(name), forwarded)])  # the node itself sends ClusterExit (S21)


def _group_create(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = name_arg(msg, "group")
    if isinstance(name, Decision):
        return name
    if name in ctx.view.config.groups:
        return err(msg, 409, "group_exists", f"group {name} already exists")
    owners = msg.args.get("preferred_owners") or []
    if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
        return err(msg, 422, "invalid_argument", "'preferred_owners' must be a list of node names")
    unknown = [o for o in owners if not ctx.view.config.is_member(o)]
    if unknown:
        return err(msg, 422, "invalid_argument", f"preferred owners are not members: {', '.join(unknown)}")
    created = ev.GroupCreated(group=name, preferred_owners=tuple(owners), failback=bool(msg.args.get("failback", False)))
    return accept([draft(created, by=ctx.leader)])


def _group_move(ctx: Context, msg: m.AdminCommand) -> Decision:
    view = ctx.view
    name = name_arg(msg, "group")
    if isinstance(name, Decision):
        return name
    if name not in view.config.groups:
        return err(msg, 404, "unknown_group", f"no group named {name}")
    target = _member(view, msg)
    if isinstance(target, Decision):
        return target
    state = view.membership.nodes[target].state
    if state != "Online":
        return err(msg, 409, "wrong_state", f"{target} is {state}; groups move only to an Online node")
    gv = view.membership.groups.get(name)
    owner = gv.owner if gv else None
    if owner is None:
        # An admin moving a Failed group brings it back (WSFC): its failover count starts afresh.
        revive = [draft(ev.GroupOnlineRequested(group=name), by=ctx.leader)] if gv and gv.state == "Failed" else []
        prev = gv.last_owner if gv else None
        if prev is not None and prev != target and not ctx.stopped(prev, name, gv.since_seq, view):
            # Placed there once prev provably stopped it; the intent is logged before the 202.
            intent = release(name, f"admin move to {target}", ctx.leader, moving_to=target)
            return Decision((*revive, intent), status=202, detail=f"{name} moves to {target} once {prev} has stopped it")
        moved = draft(ev.GroupMoved(group=name, from_node=None, to_node=target, reason="admin move"), by=ctx.leader)
        return accept(revive + [moved])
    if owner == target:
        return err(msg, 409, "already_there", f"group {name} already runs on {target}")
    # Released now; placed on the target once the old owner has stopped it (invariant 4).
    return accept([release(name, f"admin move to {target}", ctx.leader, moving_to=target)])


def _group_delete(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = name_arg(msg, "group")
    if isinstance(name, Decision):
        return name
    if name not in ctx.view.config.groups:
        return err(msg, 404, "unknown_group", f"no group named {name}")
    return accept([draft(ev.GroupDeleted(group=name), by=ctx.leader)])


def _stop_cluster(ctx: Context, msg: m.AdminCommand) -> Decision:
    """A planned stop of the whole cluster (sent before every node leaves): each placed group
    goes offline once, saying why, and none is placed again until the next start. Without it
    every leave would move the groups on to the nodes still up, through every node."""
    mv = ctx.view.membership
    if mv.stopping:
        return unchanged(msg, ctx.view, "the cluster is already stopping")
    drafts = [draft(ev.ClusterStopping(), by=ctx.leader)]
    drafts += [release(name, STOP_REASON, ctx.leader) for name in sorted(mv.groups)
               if mv.groups[name].owner is not None]
    return accept(drafts)


_OPS: dict[str, Callable[[Context, m.AdminCommand], Decision]] = {
    "add-node": _add_node,
    "pause": _pause,
    "resume": _resume,
    "evict": _evict,
    "leave": _leave,
    "group-create": _group_create,
    "group-move": _group_move,
    "group-delete": _group_delete,
    "group-online": admin_groups.group_online,
    "group-offline": admin_groups.group_offline,
    "group-apply": admin_groups.group_apply,
    "resource-restart": admin_groups.resource_restart,
    "stop-cluster": _stop_cluster,
}


def decide(view: ClusterState, msg: m.AdminCommand, *, leader: str, stopped: StopProof) -> Decision:
    op = _OPS.get(msg.op)
    if op is None:
        return err(msg, 422, "unknown_command", f"the leader cannot run '{msg.op}'")
    return op(Context(view, leader, stopped), msg)
