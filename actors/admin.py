"""Admin commands, decided by the leader: pure functions of (view, command) returning a
`Decision` — the drafts to append, messages to send, or an answer now (a rejected command is an operating error, not an exception). HTTP-style
statuses: 404 unknown node or group, 409 conflicts with the state, 422 malformed input.

The leader passes the view as it will be once its pending decisions commit, its own id,
and `stopped(node, group, release_seq, view)`: its proof that a node no longer runs a group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from actors import messages as m
from actors.effects import Effect, Send
from actors.placement import load_of, place
from events import types as ev
from events.record import Draft, draft
from projections.state import ClusterState

NAME_MAX_CHARS = 64
NAME_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_MAX_CHARS - 1}}}$")
EVICT_REASON_MAX_CHARS = 200
StopProof = Callable[[str, str, int, ClusterState], bool]


@dataclass(frozen=True)
class Decision:
    drafts: tuple[Draft, ...] = ()
    effects: tuple[Effect, ...] = ()
    reply: m.AdminReply | None = None  # answered now: an error (nothing appended)
    status: int = 200  # the answer once the drafts commit (202: accepted, finishes later)
    detail: str | None = None


@dataclass(frozen=True)
class Context:
    view: ClusterState
    leader: str
    stopped: StopProof


def release(group: str, reason: str, by: str, moving_to: str | None = None) -> Draft:
    """The first step of every move off a live owner: the group goes Offline there. A move's
    target is in the event (durable: a new leader finishes the move, issue 13)."""
    return draft(ev.GroupStateChanged(group=group, state="Offline", reason=reason, moving_to=moving_to), by=by)


def _accept(drafts: list[Draft], effects: list[Effect] = ()) -> Decision:
    return Decision(tuple(drafts), tuple(effects))


def _err(msg: m.AdminCommand, status: int, error: str, detail: str) -> Decision:
    return Decision(reply=m.AdminReply(request_id=msg.request_id, ok=False, status=status, error=error, detail=detail))


def _name_arg(msg: m.AdminCommand, key: str) -> str | Decision:
    value = msg.args.get(key)
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        return _err(msg, 422, "invalid_argument",
                    f"'{key}' must be a name of 1-{NAME_MAX_CHARS} letters, digits, '_', '.', '-'")
    return value


def _member(view: ClusterState, msg: m.AdminCommand) -> str | Decision:
    name = _name_arg(msg, "node")
    if isinstance(name, Decision):
        return name
    if name not in view.membership.nodes or not view.config.is_member(name):
        return _err(msg, 404, "unknown_node", f"no member named {name}")
    return name


def _add_node(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _name_arg(msg, "node")
    if isinstance(name, Decision):
        return name
    if ctx.view.config.is_member(name):
        return _err(msg, 409, "already_member", f"{name} is already a member")
    address = msg.args.get("address")
    return _accept([draft(ev.NodeAdded(address=address if isinstance(address, str) else None), by=ctx.leader, node=name)])


def _pause(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _member(ctx.view, msg)
    if isinstance(name, Decision):
        return name
    state = ctx.view.membership.nodes[name].state
    if state != "Online":
        return _err(msg, 409, "wrong_state", f"{name} is {state}; only an Online node can be paused")
    drain = bool(msg.args.get("drain", False))
    drafts = [draft(ev.NodePaused(drain=drain), by=ctx.leader, node=name)]
    if drain:  # S12: optional drain moves its groups away first
        drafts += _moves_off(ctx, name, "drain")
    return _accept(drafts)


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
        return _err(msg, 409, "wrong_state", f"{name} is {state}; only a Paused node can be resumed")
    return _accept([draft(ev.NodeResumed(), by=ctx.leader, node=name)])


def _evict(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _member(ctx.view, msg)
    if isinstance(name, Decision):
        return name
    if name == ctx.leader:
        return _err(msg, 409, "is_leader", f"{name} leads the cluster; make it leave first")
    reason = str(msg.args.get("reason") or "admin command")[:EVICT_REASON_MAX_CHARS]
    drafts = [draft(ev.NodeEvicted(reason=reason), by=ctx.leader, node=name)]
    return _accept(drafts, [Send(m.node_addr(name), m.EvictNotice(node=name, reason=reason))])


def _leave(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _member(ctx.view, msg)
    if isinstance(name, Decision):
        return name
    if not ctx.view.membership.is_full_member(name):
        return _err(msg, 409, "wrong_state", f"{name} is not Online or Paused")
    forwarded = msg.model_copy(update={"hops": msg.hops + 1})
    return _accept([], [Send(m.node_addr(name), forwarded)])  # the node itself sends ClusterExit (S21)


def _group_create(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _name_arg(msg, "group")
    if isinstance(name, Decision):
        return name
    if name in ctx.view.config.groups:
        return _err(msg, 409, "group_exists", f"group {name} already exists")
    owners = msg.args.get("preferred_owners") or []
    if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
        return _err(msg, 422, "invalid_argument", "'preferred_owners' must be a list of node names")
    unknown = [o for o in owners if not ctx.view.config.is_member(o)]
    if unknown:
        return _err(msg, 422, "invalid_argument", f"preferred owners are not members: {', '.join(unknown)}")
    created = ev.GroupCreated(group=name, preferred_owners=tuple(owners), failback=bool(msg.args.get("failback", False)))
    return _accept([draft(created, by=ctx.leader)])


def _group_move(ctx: Context, msg: m.AdminCommand) -> Decision:
    view = ctx.view
    name = _name_arg(msg, "group")
    if isinstance(name, Decision):
        return name
    if name not in view.config.groups:
        return _err(msg, 404, "unknown_group", f"no group named {name}")
    target = _member(view, msg)
    if isinstance(target, Decision):
        return target
    state = view.membership.nodes[target].state
    if state != "Online":
        return _err(msg, 409, "wrong_state", f"{target} is {state}; groups move only to an Online node")
    gv = view.membership.groups.get(name)
    owner = gv.owner if gv else None
    if owner is None:
        prev = gv.last_owner if gv else None
        if prev is not None and prev != target and not ctx.stopped(prev, name, gv.since_seq, view):
            # Placed there once prev provably stopped it; the intent is logged before the 202.
            intent = release(name, f"admin move to {target}", ctx.leader, moving_to=target)
            return Decision((intent,), status=202, detail=f"{name} moves to {target} once {prev} has stopped it")
        return _accept([draft(ev.GroupMoved(group=name, from_node=None, to_node=target, reason="admin move"), by=ctx.leader)])
    if owner == target:
        return _err(msg, 409, "already_there", f"group {name} already runs on {target}")
    # Released now; placed on the target once the old owner has stopped it (invariant 4).
    return _accept([release(name, f"admin move to {target}", ctx.leader, moving_to=target)])


def _group_delete(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _name_arg(msg, "group")
    if isinstance(name, Decision):
        return name
    if name not in ctx.view.config.groups:
        return _err(msg, 404, "unknown_group", f"no group named {name}")
    return _accept([draft(ev.GroupDeleted(group=name), by=ctx.leader)])


_OPS: dict[str, Callable[[Context, m.AdminCommand], Decision]] = {
    "add-node": _add_node,
    "pause": _pause,
    "resume": _resume,
    "evict": _evict,
    "leave": _leave,
    "group-create": _group_create,
    "group-move": _group_move,
    "group-delete": _group_delete,
}


def decide(view: ClusterState, msg: m.AdminCommand, *, leader: str, stopped: StopProof) -> Decision:
    op = _OPS.get(msg.op)
    if op is None:
        return _err(msg, 422, "unknown_command", f"the leader cannot run '{msg.op}'")
    return op(Context(view, leader, stopped), msg)
