"""Admin routes: bearer-token checked, input validated here, then handed to the AdminPort (the
node forwards to the leader). The leader's AdminReply status maps straight to the HTTP status;
the answer carries the seq of the committed event.

The token is compared with hmac.compare_digest and never echoed or logged (aiohttp's access
log does not print request headers).
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from aiohttp import web

from events import codec
from roster.http.errors import SEQ_HEADER, ApiError, invalid, log, not_found
from roster.http.handlers import bool_param, check_query, ctx_of, name_ok

OUTCOME_UNKNOWN = "outcome_unknown"  # the leader changed mid-commit: the body names the request id

ADMIN_TIMEOUT_S = 10.0  # the leader answers once the event commits; past this the client hears 503
ADMIN_BODY_MAX_BYTES = 64 * 1024  # admin bodies are a few names; anything larger is refused (413)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="roster"'}
NO_PARAMS: frozenset[str] = frozenset()


def check_token(request: web.Request) -> None:
    expected = ctx_of(request).token
    if not expected:
        raise ApiError(401, "unauthorized", "admin commands are disabled on this node (it has no admin token)",
                       _CHALLENGE)
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(401, "unauthorized", "admin commands need 'Authorization: Bearer <token>'", _CHALLENGE)
    if not hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected):
        raise ApiError(401, "unauthorized", "the bearer token is not this cluster's admin token", _CHALLENGE)


def _path_name(request: web.Request, key: str, what: str) -> str:
    """A node or group named in the path; a string that cannot be a name names nothing (404)."""
    name = request.match_info[key]
    if not name_ok(name):
        raise not_found(f"unknown_{what}", f"no {what} named {name[:64]!r}")
    return name


async def _json_body(request: web.Request, allowed: frozenset[str], required: frozenset[str]) -> dict[str, Any]:
    raw = await request.read()  # over the app's client_max_size: aiohttp raises 413
    if not raw.strip():
        raise invalid(f"a JSON object body is required (fields: {', '.join(sorted(allowed))})")
    try:
        doc = codec.loads(raw)
    except codec.CodecError as exc:
        raise invalid(f"the body is not JSON: {str(exc)[:120]}") from None
    if not isinstance(doc, dict):
        raise invalid("the body must be a JSON object")
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise invalid(f"unknown field(s) {', '.join(map(repr, unknown))[:200]} (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(doc))
    if missing:
        raise invalid(f"missing field(s): {', '.join(missing)}")
    return doc


def _name_field(doc: dict[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str) or not name_ok(value):
        raise invalid(f"'{key}' must be a name of 1-64 letters, digits, '_', '.', '-'")
    return value


async def _run(request: web.Request, op: str, args: dict[str, Any], echo: dict[str, Any] | None = None) -> web.Response:
    """Forward a command to the leader; the answer repeats `echo` (default: the args)."""
    ctx = ctx_of(request)
    try:
        reply = await asyncio.wait_for(ctx.admin(op, args), ADMIN_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise ApiError(503, "no_answer", f"no answer from the leader within {ADMIN_TIMEOUT_S:g} s; "
                                         "the command may still commit (check /v1/events)") from None
    except Exception as exc:  # the node's forwarding failed (actor gone, connection lost)
        log.warning("admin %s could not be forwarded: %s", op, type(exc).__name__)
        raise ApiError(503, "no_leader", f"the command could not reach the leader ({type(exc).__name__})") from None
    if not reply.ok:
        status = reply.status if 400 <= reply.status < 600 and reply.status != 500 else 502
        # outcome_unknown (504): the leader changed while the command was being committed; the
        # request id is in its events if it happened (look it up in /v1/events).
        extra = {"request_id": reply.request_id} if reply.error == OUTCOME_UNKNOWN else None
        raise ApiError(status, reply.error or "rejected", reply.detail or f"the leader refused {op}", extra=extra)
    seq = reply.seq if reply.seq is not None else ctx.feed.seq
    body = {"ok": True, "op": op, "seq": seq, "replica_seq": ctx.feed.seq, **(args if echo is None else echo)}
    resp = web.Response(status=reply.status if 200 <= reply.status < 300 else 200,
                        body=codec.dumps(body), content_type="application/json")
    resp.headers[SEQ_HEADER] = str(seq)
    return resp


# --- node commands -------------------------------------------------------------------------------------


async def _node_command(request: web.Request, op: str, params: frozenset[str] = NO_PARAMS) -> web.Response:
    check_token(request)
    q = check_query(request, params)
    args: dict[str, Any] = {"node": _path_name(request, "id", "node")}
    if "drain" in params:
        args["drain"] = bool_param(q, "drain")
    return await _run(request, op, args)


async def post_pause(request: web.Request) -> web.Response:
    return await _node_command(request, "pause", frozenset({"drain"}))


async def post_resume(request: web.Request) -> web.Response:
    return await _node_command(request, "resume")


async def post_evict(request: web.Request) -> web.Response:
    return await _node_command(request, "evict")


async def post_leave(request: web.Request) -> web.Response:
    return await _node_command(request, "leave")


async def post_add_node(request: web.Request) -> web.Response:
    check_token(request)
    check_query(request, NO_PARAMS)
    doc = await _json_body(request, frozenset({"id", "address"}), frozenset({"id"}))
    args: dict[str, Any] = {"node": _name_field(doc, "id")}
    if "address" in doc:  # given, it must be a real address (null is not one: leave it out)
        address = doc["address"]
        if not isinstance(address, str) or not 0 < len(address) <= 255:
            raise invalid("'address' must be a string of 1-255 characters")
        args["address"] = address
    return await _run(request, "add-node", args)


# --- group commands ------------------------------------------------------------------------------------


async def post_group_create(request: web.Request) -> web.Response:
    check_token(request)
    check_query(request, NO_PARAMS)
    doc = await _json_body(request, frozenset({"name", "preferred_owners", "failback"}), frozenset({"name"}))
    owners = doc.get("preferred_owners", [])
    if not isinstance(owners, list) or not all(isinstance(o, str) and name_ok(o) for o in owners):
        raise invalid("'preferred_owners' must be a list of node names")
    failback = doc.get("failback", False)
    if not isinstance(failback, bool):
        raise invalid("'failback' must be true or false")
    args = {"group": _name_field(doc, "name"), "preferred_owners": owners, "failback": failback}
    return await _run(request, "group-create", args)


async def post_group_move(request: web.Request) -> web.Response:
    check_token(request)
    check_query(request, NO_PARAMS)
    group = _path_name(request, "name", "group")
    doc = await _json_body(request, frozenset({"node"}), frozenset({"node"}))
    return await _run(request, "group-move", {"group": group, "node": _name_field(doc, "node")})


async def delete_group(request: web.Request) -> web.Response:
    check_token(request)
    check_query(request, NO_PARAMS)
    return await _run(request, "group-delete", {"group": _path_name(request, "name", "group")})


async def _group_command(request: web.Request, op: str) -> web.Response:
    check_token(request)
    check_query(request, NO_PARAMS)
    return await _run(request, op, {"group": _path_name(request, "name", "group")})


async def post_group_online(request: web.Request) -> web.Response:
    """A Failed group, or one taken offline, is placed by its policy again (WSFC "bring online")."""
    return await _group_command(request, "group-online")


async def post_group_offline(request: web.Request) -> web.Response:
    """The group is stopped wherever it runs and placed nowhere until brought online."""
    return await _group_command(request, "group-offline")


async def post_resource_restart(request: web.Request) -> web.Response:
    check_token(request)
    check_query(request, NO_PARAMS)
    args = {"group": _path_name(request, "name", "group"), "resource": _path_name(request, "resource", "resource")}
    return await _run(request, "resource-restart", args)


async def post_apply(request: web.Request) -> web.Response:
    """The declared groups and resources (what `roster apply FILE` sends): the leader creates,
    changes and (with prune) removes until the config DB matches; the whole declaration is
    validated before anything is appended, and a second apply of the same appends nothing."""
    check_token(request)
    check_query(request, NO_PARAMS)
    doc = await _json_body(request, frozenset({"groups", "prune"}), frozenset({"groups"}))
    if not isinstance(doc["groups"], dict):
        raise invalid("'groups' must be an object: group name -> its declaration")
    prune = doc.get("prune", False)
    if not isinstance(prune, bool):
        raise invalid("'prune' must be true or false")
    # The answer names the groups, not the whole declaration it was sent.
    return await _run(request, "group-apply", {"groups": doc["groups"], "prune": prune},
                      echo={"groups": sorted(doc["groups"]), "prune": prune})


async def post_cluster_stop(request: web.Request) -> web.Response:
    """A planned stop of the whole cluster (what `roster down` sends before the nodes leave):
    each group goes offline once (reason "cluster stopping") and none is placed again until
    the next start, so a stop never moves groups from node to node."""
    check_token(request)
    check_query(request, NO_PARAMS)
    return await _run(request, "stop-cluster", {})
