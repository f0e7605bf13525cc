"""Read routes: thin handlers over the node's local replica (the feed's projections).

The documents are built here from the projections field by field (an allow-list), so a field
added to a projection later is never exposed by accident; the config carries only the
secret's fingerprint, as the log does.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from actors.node import ACTIVE_ROLES
from events import codec
from events.types import EVENT_TYPES
from projections import replay
from projections.membership import MEMBER_STATES
from projections.resources import ResourceRuntime
from projections.state import ClusterState
from roster.http.errors import SEQ_HEADER, invalid, not_found
from roster.http.handlers import (CTX, Ctx, Prepared, answer, check_query, ctx_of, int_param, leader_view_of,
                                  live_answer, name_ok, view_seq, wait_replica)

DEFAULT_PAGE_EVENTS = 100
MAX_PAGE_EVENTS = 1000
HEALTHY_ROLES = frozenset({"leader", "follower"})  # "searching" has no leader: not ready for traffic

STATE_PARAMS = frozenset({"at", "min_seq", "timeout_ms"})
WAIT_PARAMS = frozenset({"min_seq", "timeout_ms"})
EVENTS_PARAMS = frozenset({"from", "limit", "type", "node"})


# --- documents ---------------------------------------------------------------------------------------


def _cluster(ctx: Ctx, state: ClusterState) -> str | None:
    return ctx.cluster_name or state.config.name


def membership_doc(ctx: Ctx, state: ClusterState) -> dict[str, Any]:
    view, cfg = state.membership.to_dict(), state.config
    for n in view["nodes"]:
        member = cfg.members.get(n["id"])
        n["member"] = member is not None
        n["address"] = member.address if member else None
        n["leader"] = n["id"] == view["leader"]
    for g in view["groups"]:
        gc = cfg.groups.get(g["name"])
        g["preferred_owners"] = list(gc.preferred_owners) if gc else []
        g["failback"] = gc.failback if gc else False
        g["resources"] = _resources_summary(state, g["name"])
    return {"cluster": _cluster(ctx, state), "cluster_id": cfg.cluster_id, "seq": state.seq, "hash": state.hash,
            "ts": view["ts"], "epoch": view["epoch"], "leader": view["leader"],
            "nodes": view["nodes"], "groups": view["groups"]}


def _resources_summary(state: ClusterState, group: str) -> list[dict[str, Any]]:
    """Each resource's state, owner, restarts and last failure, in start order (an allow-list:
    a spec's params may hold secrets; `GET /v1/groups/{name}` has the policies)."""
    cfg = state.config.groups.get(group)
    if cfg is None:
        return []
    out = []
    for spec in cfg.resources:
        rt = state.resources.resources.get((group, spec.name)) or ResourceRuntime(group, spec.name)
        d = rt.to_dict()
        out.append({"name": spec.name, "type": spec.type,
                    **{k: d[k] for k in ("state", "owner", "attempt", "restarts", "since_seq", "last_failure")}})
    return out


def config_doc(ctx: Ctx, state: ClusterState) -> dict[str, Any]:
    c = state.config
    return {
        "cluster": _cluster(ctx, state),
        "cluster_id": c.cluster_id,
        "seq": state.seq,
        "hash": state.hash,
        "secret_fingerprint": c.secret_fingerprint,  # a fingerprint only: the secret never enters the log
        "settings": {k: v for k, v in sorted(c.settings.items())},
        "quorum": {"resource": c.quorum_resource, "lease_ms": c.quorum_lease_ms},
        "members": [{"id": m.id, "added_seq": m.added_seq, "address": m.address}
                    for m in sorted(c.members.values(), key=lambda m: m.id)],
        "evicted": [{"id": n, "seq": s} for n, s in sorted(c.evicted.items())],
        "groups": [{"name": g.name, "preferred_owners": list(g.preferred_owners), "failback": g.failback,
                    "created_seq": g.created_seq} for g in sorted(c.groups.values(), key=lambda g: g.name)],
    }


def node_doc(state: ClusterState, node: str) -> dict[str, Any] | None:
    view, cfg = state.membership, state.config
    n, member = view.nodes.get(node), cfg.members.get(node)
    if n is None and member is None and node not in cfg.evicted:
        return None
    return {
        "id": node, "seq": state.seq, "hash": state.hash,
        "state": n.state if n else "Offline", "since_seq": n.since_seq if n else 0,
        "reason": n.reason if n else "", "incarnation": n.incarnation if n else 0,
        "misses": n.misses if n else 0, "evicted": node in cfg.evicted,
        "member": member is not None, "address": member.address if member else None,
        "added_seq": member.added_seq if member else None, "evicted_seq": cfg.evicted.get(node),
        "leader": view.leader == node, "groups": view.groups_of(node),
        "preferred_for": sorted(g.name for g in cfg.groups.values() if node in g.preferred_owners),
    }


# --- handlers ------------------------------------------------------------------------------------------


async def _state_view(request: web.Request, kind: str, build: Any) -> web.Response:
    ctx = request.app[CTX]
    feed = ctx.feed
    if "?" in request.raw_path:  # parameters: parse them strictly (the common case has none)
        seq = await view_seq(ctx, check_query(request, STATE_PARAMS))
    else:
        seq = feed.seq
    hash_ = feed.hash_at(seq)  # the key is known before any folding: a cached time-travel view costs nothing
    entry = ctx.cache.get((kind, seq, hash_),
                          lambda: Prepared(codec.dumps(build(ctx, feed.state_at(seq))), seq, hash_))
    return entry.respond(request)


async def get_membership(request: web.Request) -> web.Response:
    return await _state_view(request, "membership", membership_doc)


async def get_config(request: web.Request) -> web.Response:
    return await _state_view(request, "config", config_doc)


async def get_node(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    q = check_query(request, STATE_PARAMS)
    seq = await view_seq(ctx, q)
    node = request.match_info["id"]
    state = ctx.feed.state_at(seq)
    doc = node_doc(state, node) if name_ok(node) else None
    if doc is None:
        raise not_found("unknown_node", f"no node named {node[:64]!r} at seq {state.seq}")
    if "at" in q:  # a past view: the log holds no heartbeats, so there is no leader view of it
        return answer(request, codec.dumps({**doc, "leader_view": None}), state.seq, state.hash)
    live = {**doc, "leader_view": await leader_view_of(ctx, node)}  # changes without the seq changing
    return live_answer(codec.dumps(live), state.seq)


async def get_timeline(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    await wait_replica(ctx, check_query(request, WAIT_PARAMS))
    node, feed = request.match_info["id"], ctx.feed
    seq, hash_ = feed.seq, feed.hash

    def build() -> Prepared:
        entries = replay.timeline(feed.history(), node)
        doc = {"node": node, "seq": seq, "hash": hash_, "entries": [e.to_dict() for e in entries]}
        return Prepared(codec.dumps(doc), seq, hash_)

    if not name_ok(node) or node_doc(feed.state, node) is None:
        raise not_found("unknown_node", f"no node named {node[:64]!r} at seq {seq}")
    return ctx.cache.get(("timeline", node, seq, hash_), build).respond(request)


def events_filters(q: Any) -> tuple[str | None, str | None]:
    type_, node = q.get("type"), q.get("node")
    if type_ is not None and type_ not in EVENT_TYPES:
        raise invalid(f"unknown event type {type_[:64]!r} (one of: {', '.join(sorted(EVENT_TYPES))})")
    if node is not None and not name_ok(node):
        raise invalid(f"node must be a node name, not {node[:64]!r}")
    return type_, node


async def get_events(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    q = check_query(request, EVENTS_PARAMS)
    from_seq = int_param(q, "from", 1)
    limit = int_param(q, "limit", DEFAULT_PAGE_EVENTS, 1, MAX_PAGE_EVENTS)
    type_, node = events_filters(q)
    assert from_seq is not None and limit is not None
    feed = ctx.feed
    records, next_seq = feed.page(from_seq, limit, type_, node)
    doc = {"seq": feed.seq, "hash": feed.hash, "events": [codec.envelope(r) for r in records],
           "next": next_seq, "more": next_seq <= feed.seq}
    return answer(request, codec.dumps(doc), feed.seq, feed.hash)


async def get_health(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    check_query(request, frozenset())
    feed = ctx.feed
    doc = ctx.health().as_dict()
    me = feed.state.membership.nodes.get(doc["node"])
    doc.update(seq=feed.seq, state=me.state if me else None)
    problems = []
    if doc["role"] not in HEALTHY_ROLES:
        problems.append(f"role is {doc['role']}" + ("" if doc["role"] in ACTIVE_ROLES else " (stopped)"))
    if me is None or me.state not in MEMBER_STATES:
        problems.append(f"membership state is {me.state if me else 'unknown'}")
    doc["ok"] = not problems
    if problems:  # a load balancer reads the status; a person reads error/detail
        doc.update(error="unhealthy", detail="; ".join(problems))
    body = codec.dumps(doc)
    resp = web.Response(status=200 if not problems else 503, body=body, content_type="application/json")
    resp.headers[SEQ_HEADER] = str(feed.seq)
    resp.headers["Cache-Control"] = "no-store"
    return resp
