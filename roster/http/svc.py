"""One address for clients: `/svc/<group>/<path>` on every node, and `GET /v1/groups/{name}`.

Any method, with its body and headers streamed both ways, is forwarded to the endpoint of
the group's `process` resource that serves one (`ResourceOnline.endpoint` in this node's
replica), wherever it runs now. A client can talk to any node, or a load balancer over all
of them, and never learns which server runs the service. While the group is moving, or
has no Online endpoint, the answer is 503 with `Retry-After` and a JSON error body; an
unknown group is a 404. The forward is plain HTTP/1.1 to the endpoint: the cluster's own
network is trusted as the service's would be without Roster.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from events import codec
from projections.state import ClusterState
from roster.http.errors import SEQ_HEADER, ApiError, not_found
from roster.http.handlers import answer, check_query, ctx_of, name_ok, view_seq
from roster.http.query import STATE_PARAMS

SVC_RETRY_AFTER_S = 1  # a failover completes in seconds: ask clients to come back soon
SVC_CONNECT_TIMEOUT_MS = 2_000
SVC_READ_TIMEOUT_MS = 60_000  # between two chunks of the service's answer
SVC_CHUNK_BYTES = 64 * 1024
# Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, never forwarded; Host is the endpoint's.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host"})


class SvcClient:
    """The app's one client session to services (made on first use, closed on cleanup)."""

    session: aiohttp.ClientSession | None = None


SVC_CLIENT: web.AppKey[SvcClient] = web.AppKey("svc_client", SvcClient)


def setup(app: web.Application) -> None:
    app[SVC_CLIENT] = SvcClient()
    app.on_cleanup.append(close_session)


def _unavailable(group: str, why: str) -> ApiError:
    return ApiError(503, "group_unavailable", f"group {group!r} {why}; retry in {SVC_RETRY_AFTER_S} s",
                    headers={"Retry-After": str(SVC_RETRY_AFTER_S)})


def _session(app: web.Application) -> aiohttp.ClientSession:
    client = app[SVC_CLIENT]
    if client.session is None or client.session.closed:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=SVC_CONNECT_TIMEOUT_MS / 1000,
                                        sock_read=SVC_READ_TIMEOUT_MS / 1000)
        client.session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False,
                                               cookie_jar=aiohttp.DummyCookieJar())
    return client.session


async def close_session(app: web.Application) -> None:
    session = app[SVC_CLIENT].session
    if session is not None:
        await session.close()


def _forward_headers(request: web.Request) -> dict[str, str]:
    out = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    peer = request.remote or ""
    prior = request.headers.get("X-Forwarded-For")
    out["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    out["X-Forwarded-Host"] = request.host
    out["X-Forwarded-Proto"] = request.scheme
    return out


def endpoint_for(state: ClusterState, group: str) -> str:
    if not name_ok(group) or group not in state.config.groups:
        raise not_found("unknown_group", f"no group named {group[:64]!r}")
    endpoint = state.resources.endpoint_of(group)
    if endpoint is None:
        owner = state.membership.groups.get(group)
        why = "has no Online service endpoint" + (f" (group {owner.state})" if owner else "")
        raise _unavailable(group, why)
    return endpoint


async def forward(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    group, rest = request.match_info["group"], request.match_info["path"]
    endpoint = endpoint_for(ctx.feed.state, group)
    url = f"http://{endpoint}/{rest}" + (f"?{request.query_string}" if request.query_string else "")
    body = request.content if request.body_exists else None
    resp: web.StreamResponse | None = None
    try:
        async with _session(request.app).request(request.method, url, headers=_forward_headers(request),
                                                 data=body, allow_redirects=False) as upstream:
            resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for k, v in upstream.headers.items():
                if k.lower() not in HOP_BY_HOP:
                    resp.headers.add(k, v)
            resp.headers[SEQ_HEADER] = str(ctx.feed.seq)
            await resp.prepare(request)
            async for chunk in upstream.content.iter_chunked(SVC_CHUNK_BYTES):
                await resp.write(chunk)
            await resp.write_eof()
            return resp
    except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
        if resp is not None and resp.prepared:  # mid-answer: nothing to do but cut the connection
            raise ConnectionResetError(f"service of group {group!r} went away mid-answer") from None
        # the endpoint went away between the replica's last word and now: the group is moving
        raise _unavailable(group, f"did not answer at its endpoint ({type(exc).__name__})") from None


# --- GET /v1/groups/{name} -----------------------------------------------------------------------------


def group_doc(state: ClusterState, name: str) -> dict[str, Any] | None:
    cfg = state.config.groups.get(name)
    if cfg is None:
        return None
    g = state.membership.groups.get(name)
    runtime = {r.resource: r for r in state.resources.of_group(name)}
    resources = []
    for spec in cfg.resources:  # an allow-list: params (env, kwargs) may hold secrets and are left out
        rt = runtime.get(spec.name)
        d = rt.to_dict() if rt else {"state": "Offline", "owner": None, "attempt": 0, "restarts": 0,
                                     "endpoint": None, "last_failure": None, "since_seq": 0}
        resources.append({"name": spec.name, "type": spec.type, "depends_on": list(spec.depends_on),
                          "state": d["state"], "owner": d["owner"], "attempt": d["attempt"],
                          "restarts": d["restarts"], "endpoint": d["endpoint"], "last_failure": d["last_failure"],
                          "since_seq": d["since_seq"], "health": spec.health.model_dump(),
                          "restart": spec.restart.model_dump(), "start_timeout_ms": spec.start_timeout_ms,
                          "stop_timeout_ms": spec.stop_timeout_ms})
    return {"name": name, "seq": state.seq, "hash": state.hash, "owner": g.owner if g else None,
            "state": g.state if g else "Offline", "preferred_owners": list(cfg.preferred_owners),
            "failback": cfg.failback, "failover": cfg.failover.model_dump(), "created_seq": cfg.created_seq,
            "resources": resources, "endpoint": state.resources.endpoint_of(name)}


async def get_group(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    seq = await view_seq(ctx, check_query(request, STATE_PARAMS))
    name = request.match_info["name"]
    state = ctx.feed.state_at(seq)
    doc = group_doc(state, name) if name_ok(name) else None
    if doc is None:
        raise not_found("unknown_group", f"no group named {name[:64]!r} at seq {state.seq}")
    return answer(request, codec.dumps(doc), state.seq, state.hash)
