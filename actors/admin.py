"""Admin commands, decided by the leader against the committed view.

Each returns either an error reply (a rejected command is an operating error, not an
exception) or the drafts to append plus any messages to send. HTTP-style statuses:
404 unknown node or group, 409 conflicts with the state, 422 malformed input.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable

from actors import messages as m
from actors.effects import Effect, Send
from actors.placement import load_of, place
from events import types as ev
from events.record import Draft, draft
from projections.state import ClusterState

if TYPE_CHECKING:
    from actors.node import NodeCore

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
Decision = m.AdminReply | tuple[list[Draft], list[Effect]]


def _err(msg: m.AdminCommand, status: int, error: str, detail: str) -> m.AdminReply:
    return m.AdminReply(request_id=msg.request_id, ok=False, status=status, error=error, detail=detail)


def _name_arg(msg: m.AdminCommand, key: str) -> str | m.AdminReply:
    value = msg.args.get(key)
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        return _err(msg, 422, "invalid_argument", f"'{key}' must be a name of 1-64 letters, digits, '_', '.', '-'")
    return value


def _member(view: ClusterState, msg: m.AdminCommand) -> str | m.AdminReply:
    name = _name_arg(msg, "node")
    if isinstance(name, m.AdminReply):
        return name
    if name not in view.membership.nodes or not view.config.is_member(name):
        return _err(msg, 404, "unknown_node", f"no member named {name}")
    return name


def _add_node(node: NodeCore, msg: m.AdminCommand, view: ClusterState) -> Decision:
    name = _name_arg(msg, "node")
    if isinstance(name, m.AdminReply):
        return name
    if view.config.is_member(name):
        return _err(msg, 409, "already_member", f"{name} is already a member")
    address = msg.args.get("address")
    return [draft(ev.NodeAdded(address=address if isinstance(address, str) else None), by=node.id, node=name)], []


def _pause(node: NodeCore, msg: m.AdminCommand, view: ClusterState) -> Decision:
    name = _member(view, msg)
    if isinstance(name, m.AdminReply):
        return name
    state = view.membership.nodes[name].state
    if state != "Online":
        return _err(msg, 409, "wrong_state", f"{name} is {state}; only an Online node can be paused")
    drain = bool(msg.args.get("drain", False))
    drafts = [draft(ev.NodePaused(drain=drain), by=node.id, node=name)]
    if drain:  # S12: optional drain moves its groups away first
        drafts += _moves_off(node, view, name, "drain")
    return drafts, []


def _moves_off(node: NodeCore, view: ClusterState, name: str, reason: str) -> list[Draft]:
    mv, cfg = view.membership, view.config
    load = load_of(mv)
    out: list[Draft] = []
    for group in mv.groups_of(name):
        target = place(cfg.groups[group], mv, load, exclude=frozenset({name})) if group in cfg.groups else None
        if target is not None:
            load[target] = load.get(target, 0) + 1
            node.moving[group] = target
        out.append(node._release(group, reason))
    return out


def _resume(node: NodeCore, msg: m.AdminCommand, view: ClusterState) -> Decision:
    name = _member(view, msg)
    if isinstance(name, m.AdminReply):
        return name
    state = view.membership.nodes[name].state
    if state != "Paused":
        return _err(msg, 409, "wrong_state", f"{name} is {state}; only a Paused node can be resumed")
    return [draft(ev.NodeResumed(), by=node.id, node=name)], []


def _evict(node: NodeCore, msg: m.AdminCommand, view: ClusterState) -> Decision:
    name = _member(view, msg)
    if isinstance(name, m.AdminReply):
        return name
    if name == node.id:
        return _err(msg, 409, "is_leader", f"{name} leads the cluster; make it leave first")
    reason = str(msg.args.get("reason") or "admin command")[:200]
    drafts = [draft(ev.NodeEvicted(reason=reason), by=node.id, node=name)]
    return drafts, [Send(m.node_addr(name), m.EvictNotice(node=name, reason=reason))]


def _leave(node: NodeCore, msg: m.AdminCommand, view: ClusterState) -> Decision:
    name = _member(view, msg)
    if isinstance(name, m.AdminReply):
        return name
    if not view.membership.is_full_member(name):
        return _err(msg, 409, "wrong_state", f"{name} is not Online or Paused")
    forwarded = msg.model_copy(update={"hops": msg.hops + 1})
    return [], [Send(m.node_addr(name), forwarded)]  # the node itself sends ClusterExit (S21)


def _group_create(node: NodeCore, msg: m.AdminCommand, view: ClusterState) -> Decision:
    name = _name_arg(msg, "group")
    if isinstance(name, m.AdminReply):
        return name
    if name in view.config.groups:
        return _err(msg, 409, "group_exists", f"group {name} already exists")
    owners = msg.args.get("preferred_owners") or []
    if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
        return _err(msg, 422, "invalid_argument", "'preferred_owners' must be a list of node names")
    unknown = [o for o in owners if not view.config.is_member(o)]
    if unknown:
        return _err(msg, 422, "invalid_argument", f"preferred owners are not members: {', '.join(unknown)}")
    created = ev.GroupCreated(group=name, preferred_owners=tuple(owners), failback=bool(msg.args.get("failback", False)))
    return [draft(created, by=node.id)], []


def _group_move(node: NodeCore, msg: m.AdminCommand, view: ClusterState) -> Decision:
    name = _name_arg(msg, "group")
    if isinstance(name, m.AdminReply):
        return name
    if name not in view.config.groups:
        return _err(msg, 404, "unknown_group", f"no group named {name}")
    target = _member(view, msg)
    if isinstance(target, m.AdminReply):
        return target
    state = view.membership.nodes[target].state
    if state != "Online":
        return _err(msg, 409, "wrong_state", f"{target} is {state}; groups move only to an Online node")
    gv = view.membership.groups.get(name)
    owner = gv.owner if gv else None
    if owner is None:
        prev = gv.last_owner if gv else None
        if prev is not None and prev != target and not node._has_stopped(prev, name, gv.since_seq, view):
            node.moving[name] = target  # placed there once its last owner has provably stopped it
            return m.AdminReply(request_id=msg.request_id, ok=True, seq=view.seq, status=202,
                                detail=f"{name} moves to {target} once {prev} has stopped it")
        return [draft(ev.GroupMoved(group=name, from_node=None, to_node=target, reason="admin move"), by=node.id)], []
    if owner == target:
        return _err(msg, 409, "already_there", f"group {name} already runs on {target}")
    # Released now; placed on the target once the old owner has stopped it (invariant 4).
    node.moving[name] = target
    return [node._release(name, f"admin move to {target}")], []


def _group_delete(node: NodeCore, msg: m.AdminCommand, view: ClusterState) -> Decision:
    name = _name_arg(msg, "group")
    if isinstance(name, m.AdminReply):
        return name
    if name not in view.config.groups:
        return _err(msg, 404, "unknown_group", f"no group named {name}")
    return [draft(ev.GroupDeleted(group=name), by=node.id)], []


_OPS: dict[str, Callable[[Any, m.AdminCommand, ClusterState], Decision]] = {
    "add-node": _add_node,
    "pause": _pause,
    "resume": _resume,
    "evict": _evict,
    "leave": _leave,
    "group-create": _group_create,
    "group-move": _group_move,
    "group-delete": _group_delete,
}


def decide(node: NodeCore, msg: m.AdminCommand, now: int) -> Decision:
    op = _OPS.get(msg.op)
    if op is None:
        return _err(msg, 422, "unknown_command", f"the leader cannot run '{msg.op}'")
    # Decide against the view as it will be once our pending decisions commit, so a command
    # never contradicts one already on its way (e.g. a move of a group just placed).
    return op(node, msg, node._speculative_view())
