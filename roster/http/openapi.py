"""The OpenAPI 3.1 document of every route, written by hand (served at /openapi.json).

tests/test_http_schema.py checks it against the route table, validates real responses
against it, and fuzzes every operation from it (schemathesis and hypothesis).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from actors.admin import NAME_PATTERN
from actors.resource_types import TYPE_PARAMS
from events.resource_spec import RESOURCE_NAME_PATTERN
from events import codec
from events.types import EVENT_TYPES
from roster.http.errors import SEQ_HEADER
from roster.http.handlers import DEFAULT_WAIT_MS, MAX_SEQ, MAX_WAIT_MS, ctx_of

API_VERSION = "1.0.0"
_REF = "#/components/schemas/"
NAME = {"type": "string", "pattern": NAME_PATTERN.pattern}
NULLABLE_STR = {"type": ["string", "null"]}
SEQ = {"type": "integer", "minimum": 0, "maximum": MAX_SEQ}
INT = {"type": "integer"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _obj(props: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": [k for k in props if k not in optional]}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int, admin: bool = False) -> dict[str, Any]:
    why = {304: "Not modified (If-None-Match matched the ETag)", 401: "Missing or wrong bearer token",
           404: "Unknown node, group or seq", 409: "Conflicts with the cluster's state",
           413: "Body too large", 422: "Malformed input (the detail names the problem)",
           502: "The leader's answer made no sense",
           503: "No leader reachable, or this node is not healthy, or (error history_loading, with "
                "Retry-After) the node just started and is still loading the older records the read needs",
           504: "The replica did not reach min_seq in time"}
    if admin:
        why[504] = ("Outcome unknown: the leader changed while committing the command; look up request_id "
                    "in /v1/events (its events carry it if it happened)")
    out: dict[str, Any] = {}
    for s in statuses:
        out[str(s)] = {"description": why[s]} if s == 304 else _json(_ref("Error"), why[s])
    return out


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": NAME}


PARAMS: dict[str, dict[str, Any]] = {
    "at": _query("at", {"anyOf": [{"type": "string", "pattern": "^[0-9]{1,18}$"},
                                  {"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]},
                 "The view at a seq (digits) or an ISO-8601 time (the last record at or before it)"),
    "min_seq": _query("min_seq", SEQ, "Wait until this replica has applied this seq (read your write)"),
    "timeout_ms": _query("timeout_ms", {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_MS},
                         f"How long min_seq waits (default {DEFAULT_WAIT_MS} ms)"),
    "from": _query("from", SEQ, "The first seq to return"),
    "limit": _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Events per page (default 100)"),
    "type": _query("type", {"type": "string", "enum": sorted(EVENT_TYPES)}, "Only events of this type"),
    "node": _query("node", NAME, "Only events about this node"),
    "drain": _query("drain", {"type": "boolean"}, "Move the node's groups away first (S12)"),
    "if_none_match": {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                      "description": "An ETag from an earlier answer: 304 when the seq is unchanged"},
    "last_event_id": {"name": "Last-Event-ID", "in": "header", "required": False,
                      "schema": {"type": "string", "pattern": "^[ \t]*([0-9]{1,18})?[ \t]*$"},
                      "description": "Resume after this seq (sent by EventSource on reconnect); empty: no id yet"},
}


def _params(*names: str) -> list[dict[str, Any]]:
    return [PARAMS[n] for n in names]


# The leader's view of a node's heartbeats (only the leader sees them all): null in a past view
# (?at=); in the head view the age of the last heartbeat the leader's core accepted from it,
# measured on the leader's clock at `as_of`, or nulls and a `detail` saying why it is unknown.
LEADER_VIEW = {"type": ["object", "null"], "properties": {
    "leader": NULLABLE_STR, "last_heartbeat_age_ms": {"type": ["integer", "null"], "minimum": 0},
    "as_of": {"type": ["string", "null"], "format": "date-time"}, "detail": NULLABLE_STR},
    "required": ["leader", "last_heartbeat_age_ms", "as_of", "detail"]}


FAILURE = {"anyOf": [{"type": "null"}, _obj({"phase": {"type": "string", "enum": ["start", "run", "probe"]},
                                             "reason": {"type": "string"}, "exit_code": {"type": ["integer", "null"]},
                                             "seq": SEQ, "node": {"type": "string"}})]}


def _node_schemas() -> dict[str, Any]:
    state = {"type": "string", "enum": ["Offline", "Joining", "Online", "Paused"]}
    names = {"type": "array", "items": {"type": "string"}}
    return {
        "MembershipNode": _obj({"id": {"type": "string"}, "state": state, "since_seq": SEQ, "reason": {"type": "string"},
                                "incarnation": INT, "misses": INT, "evicted": {"type": "boolean"}, "groups": names,
                                "member": {"type": "boolean"}, "address": NULLABLE_STR, "leader": {"type": "boolean"}}),
        "MembershipGroup": _obj({"name": {"type": "string"}, "owner": NULLABLE_STR,
                                 "state": {"type": "string", "enum": ["Online", "Offline", "Failed"]},
                                 "since_seq": SEQ, "last_owner": NULLABLE_STR, "preferred_owners": names,
                                 "failback": {"type": "boolean"},
                                 "resources": {"type": "array", "items": _ref("MembershipResource")}}),
        "MembershipResource": _obj({"name": {"type": "string"}, "type": {"type": "string"},
                                    "state": {"type": "string", "enum": ["Online", "Offline", "Failed", "Starting"]},
                                    "owner": NULLABLE_STR, "attempt": INT, "restarts": INT, "since_seq": SEQ,
                                    "last_failure": FAILURE}),
        "NodeDetail": _obj({"id": {"type": "string"}, "seq": SEQ, "hash": {"type": "string"}, "state": state,
                            "since_seq": SEQ, "reason": {"type": "string"}, "incarnation": INT, "misses": INT,
                            "evicted": {"type": "boolean"}, "member": {"type": "boolean"}, "address": NULLABLE_STR,
                            "added_seq": {"type": ["integer", "null"]}, "evicted_seq": {"type": ["integer", "null"]},
                            "leader": {"type": "boolean"}, "groups": names, "preferred_for": names,
                            "leader_view": LEADER_VIEW}, optional=("leader_view",)),
        "TimelineEntry": _obj({"seq": SEQ, "ts": {"type": "string"}, "type": {"type": "string"}, "by": {"type": "string"},
                               "from": NULLABLE_STR, "to": NULLABLE_STR, "reason": {"type": "string"}}),
    }


# One server-sent event as an SSE client parses it (OpenAPI 3.1: a text/event-stream `schema`
# describes each event, not the stream). `data` is JSON text: an Envelope for a log record, or
# {"seq"} for `event: reset`. JSON Schema 2020-12's contentMediaType/contentSchema say so.
SSE_DESCRIPTION = (
    "An endless text/event-stream. It opens with `retry: <ms>` and a comment; then one event per "
    "record: `id: <seq>` and `data: <the record as JSON, an Envelope>` (event type `message`). "
    "When the replica is replaced by a different history (S17) it sends `event: reset` with "
    "`data: {\"seq\": <head>}` and ends; the client reloads. Comment lines (`: keepalive`) keep "
    "an idle stream open.")
STREAM_FROM = _query("from", {**SEQ, "minimum": 1}, "The first seq to send (default: the next new one)")
SSE_EVENT: dict[str, Any] = {
    "oneOf": [
        _obj({"event": {"const": "message"}, "id": {"type": "string", "pattern": "^[0-9]{1,18}$"},
              "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": _ref("Envelope")},
              "retry": {"type": "integer", "minimum": 0}}, optional=("retry",)),
        _obj({"event": {"const": "reset"}, "id": {"type": "string"},
              "data": {"type": "string", "contentMediaType": "application/json",
                       "contentSchema": _obj({"seq": SEQ})},
              "retry": {"type": "integer", "minimum": 0}}, optional=("id", "retry")),
    ],
}


def _group_schemas() -> dict[str, Any]:
    failure = FAILURE
    resource = _obj({"name": {"type": "string"}, "type": {"type": "string"},
                     "depends_on": {"type": "array", "items": {"type": "string"}},
                     "state": {"type": "string", "enum": ["Online", "Offline", "Failed", "Starting"]},
                     "owner": NULLABLE_STR, "attempt": INT, "restarts": INT, "endpoint": NULLABLE_STR,
                     "last_failure": failure, "since_seq": SEQ,
                     "health": _obj({"interval_ms": INT, "timeout_ms": INT}),
                     "restart": _obj({"threshold": INT, "period_ms": INT, "delay_ms": INT}),
                     "start_timeout_ms": INT, "stop_timeout_ms": INT})
    return {
        "GroupResource": resource,
        "GroupDetail": _obj({"name": {"type": "string"}, "seq": SEQ, "hash": {"type": "string"},
                             "owner": NULLABLE_STR, "state": {"type": "string", "enum": ["Online", "Offline", "Failed"]},
                             "preferred_owners": {"type": "array", "items": {"type": "string"}},
                             "failback": {"type": "boolean"}, "failover": _obj({"threshold": INT, "period_ms": INT}),
                             "created_seq": SEQ, "resources": {"type": "array", "items": _ref("GroupResource")},
                             "endpoint": NULLABLE_STR}),
    }


def _svc_paths() -> dict[str, Any]:
    """/svc/{group}/{path}: any of these methods, forwarded to the group's service as it comes."""
    params = [{"name": "group", "in": "path", "required": True, "schema": NAME},
              {"name": "path", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "The rest of the path, forwarded as is (may hold '/')"}]
    responses = {"default": {"description": "The service's own answer, streamed as it sent it"},
                 "404": _json(_ref("Error"), "No such group"),
                 "503": _json(_ref("Error"), "The group has no Online service endpoint (moving, offline, "
                                             "failed): retry after Retry-After seconds")}

    def op(method: str) -> dict[str, Any]:
        out: dict[str, Any] = {"summary": f"{method.upper()} forwarded to the group's service, wherever it runs",
                               "parameters": params, "responses": responses}
        if method in ("post", "put", "patch"):
            out["requestBody"] = {"required": False, "content": {"*/*": {"schema": {}}}}
        return out

    return {"/svc/{group}/{path}": {m: op(m) for m in ("get", "post", "put", "patch", "delete")}}


def _schemas() -> dict[str, Any]:
    head = {"seq": SEQ, "hash": {"type": "string"}}
    cluster = {"cluster": NULLABLE_STR, "cluster_id": NULLABLE_STR}
    return {
        "Error": _obj({"error": {"type": "string"}, "detail": {"type": "string"}, "seq": SEQ,
                       "request_id": {"type": "string"}}, optional=("request_id",)),
        **_node_schemas(),
        **_group_schemas(),
        "Membership": _obj({**cluster, **head, "ts": NULLABLE_STR, "epoch": INT, "leader": NULLABLE_STR,
                            "nodes": {"type": "array", "items": _ref("MembershipNode")},
                            "groups": {"type": "array", "items": _ref("MembershipGroup")}}),
        "Config": _obj({**cluster, **head, "secret_fingerprint": NULLABLE_STR,
                        "settings": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "quorum": _obj({"resource": NULLABLE_STR, "lease_ms": {"type": ["integer", "null"]}}),
                        "members": {"type": "array", "items": _obj({"id": {"type": "string"}, "added_seq": SEQ,
                                                                      "address": NULLABLE_STR})},
                        "evicted": {"type": "array", "items": _obj({"id": {"type": "string"}, "seq": SEQ})},
                        "groups": {"type": "array", "items": _obj({
                            "name": {"type": "string"}, "preferred_owners": {"type": "array", "items": {"type": "string"}},
                            "failback": {"type": "boolean"}, "created_seq": SEQ})}}),
        "Timeline": _obj({"node": {"type": "string"}, **head,
                          "entries": {"type": "array", "items": _ref("TimelineEntry")}}),
        "Envelope": _obj({"seq": SEQ, "epoch": INT, "ts": {"type": "string"},
                          "type": {"type": "string", "enum": sorted(EVENT_TYPES)}, "node": NULLABLE_STR,
                          "by": {"type": "string"}, "v": INT, "data": {"type": "object"}, "hash": {"type": "string"}}),
        "EventsPage": _obj({**head, "events": {"type": "array", "items": _ref("Envelope")},
                            "next": SEQ, "more": {"type": "boolean"}}),
        "Health": _obj({"node": {"type": "string"}, "role": {"type": "string"}, "leader": NULLABLE_STR, "epoch": INT,
                        "applied_seq": SEQ, "replica_lag": SEQ, "seq": SEQ, "state": NULLABLE_STR,
                        "ok": {"type": "boolean"}, "error": {"type": "string"}, "detail": {"type": "string"}},
                       optional=("error", "detail")),
        "AdminResult": _obj({"ok": {"const": True}, "op": {"type": "string"}, "seq": SEQ, "replica_seq": SEQ}),
        "AddNode": {**_obj({"id": NAME, "address": {"type": "string", "minLength": 1, "maxLength": 255}},
                           optional=("address",)), "additionalProperties": False},
        "GroupCreate": {**_obj({"name": NAME, "preferred_owners": {"type": "array", "items": NAME},
                                "failback": {"type": "boolean"}}, optional=("preferred_owners", "failback")),
                        "additionalProperties": False},
        "GroupMove": {**_obj({"node": NAME}), "additionalProperties": False},
        "Apply": {**_obj({"groups": {"type": "object", "additionalProperties": _ref("GroupDeclaration")},
                          "prune": {"type": "boolean"}}, optional=("prune",)), "additionalProperties": False},
        "GroupDeclaration": {**_obj({
            "preferred_owners": {"type": "array", "items": NAME}, "failback": {"type": "boolean"},
            "failover": _obj({"threshold": INT, "period_ms": INT}, optional=("threshold", "period_ms")),
            "resources": {"type": "array", "items": _ref("ResourceDeclaration")}},
            optional=("preferred_owners", "failback", "failover", "resources")), "additionalProperties": False},
        "ResourceDeclaration": {**_obj({
            "name": {"type": "string", "pattern": RESOURCE_NAME_PATTERN}, "type": {"type": "string", "enum": sorted(TYPE_PARAMS)},
            "params": {"type": "object", "description": "The type's parameters (docs/resources.md)"},
            "depends_on": {"type": "array", "items": {"type": "string"}},
            "health": _obj({"interval_ms": INT, "timeout_ms": INT}, optional=("interval_ms", "timeout_ms")),
            "restart": _obj({"threshold": INT, "period_ms": INT, "delay_ms": INT},
                            optional=("threshold", "period_ms", "delay_ms")),
            "start_timeout_ms": INT, "stop_timeout_ms": INT},
            optional=("params", "depends_on", "health", "restart", "start_timeout_ms", "stop_timeout_ms")),
            "additionalProperties": False},
    }


def _read(summary: str, schema: str, params: list[dict[str, Any]], errors: tuple[int, ...]) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params,
                    "responses": {"200": _json(_ref(schema), "OK; the body's seq and the ETag name the seq it reflects"),
                                  **_errors(*errors)}}}


def _admin(summary: str, params: list[dict[str, Any]], body: str | None = None, method: str = "post") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params, "security": [{"bearer": []}],
                          "responses": {"200": _json(_ref("AdminResult"), "Committed; seq is the committed event's"),
                                        "202": _json(_ref("AdminResult"), "Committed; it finishes later (e.g. a "
                                                     "move waits until the old owner has stopped the group)"),
                                        **_errors(401, 404, 409, 413, 422, 502, 503, 504, admin=True)}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return {method: op}


def _paths() -> dict[str, Any]:
    state = _params("at", "min_seq", "timeout_ms", "if_none_match")
    return {
        "/v1/membership": _read("Membership: epoch, leader, every node's state and every group's owner",
                                "Membership", state, (304, 404, 422, 503, 504)),
        "/v1/config": _read("The configuration database (the secret only as a fingerprint)",
                            "Config", state, (304, 404, 422, 503, 504)),
        "/v1/nodes/{id}": _read("One node", "NodeDetail", [_path("id"), *state], (304, 404, 422, 503, 504)),
        "/v1/nodes/{id}/timeline": _read("Every lifecycle change of one node", "Timeline",
                                         [_path("id"), *_params("min_seq", "timeout_ms", "if_none_match")],
                                         (304, 404, 422, 503, 504)),
        "/v1/events": _read("A page of the log; continue from `next`", "EventsPage",
                            _params("from", "limit", "type", "node", "if_none_match"), (304, 422, 503)),
        "/v1/events/stream": {"get": {
            "summary": "The log as server-sent events (`id: <seq>`); resume with Last-Event-ID or ?from",
            "parameters": [STREAM_FROM, *_params("type", "node", "last_event_id")],
            "responses": {"200": {"description": SSE_DESCRIPTION,
                                  "content": {"text/event-stream": {"schema": SSE_EVENT}}},
                          **_errors(422, 503)}}},
        "/healthz": {"get": {"summary": "This node's role, state and replica lag", "responses": {
            "200": _json(_ref("Health"), "Healthy"), "503": _json(_ref("Health"), "Not healthy (see detail)"),
            **_errors(422)}}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
            "200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
            **_errors(422)}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {
            "200": _json({"type": "object"}, "OpenAPI 3.1")}}},
        "/v1/nodes": _admin("Add a member (S1/S4)", [], "AddNode"),
        "/v1/nodes/{id}/pause": _admin("Pause a node (S12); ?drain=true moves its groups away",
                                       [_path("id"), PARAMS["drain"]]),
        "/v1/nodes/{id}/resume": _admin("Resume a paused node", [_path("id")]),
        "/v1/nodes/{id}/evict": _admin("Evict a member (S20)", [_path("id")]),
        "/v1/nodes/{id}/leave": _admin("Make a node leave the cluster (S21)", [_path("id")]),
        "/v1/groups": _admin("Create a resource group", [], "GroupCreate"),
        "/v1/groups/{name}/move": _admin("Move a group to an Online node", [_path("name")], "GroupMove"),
        "/v1/groups/{name}": {**_admin("Delete a group", [_path("name")], method="delete"),
                              **_read("A group, its resources and their states (owner, restarts, last failure)",
                                      "GroupDetail", [_path("name"), *state], (304, 404, 422, 504))},
        "/v1/groups/{name}/online": _admin("Bring a Failed (or offline) group online: its policy places it again",
                                           [_path("name")]),
        "/v1/groups/{name}/offline": _admin("Take a group offline: stopped wherever it runs, placed nowhere",
                                            [_path("name")]),
        "/v1/groups/{name}/resources/{resource}/restart": _admin(
            "Restart one running resource in place", [_path("name"), _path("resource")]),
        "/v1/apply": _admin("Make the groups and resources match a declaration (idempotent; prune removes the rest)",
                            [], "Apply"),
        "/v1/cluster/stop": _admin("A planned stop of the whole cluster: each group goes offline once", []),
        **_svc_paths(),
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Roster", "version": API_VERSION,
                 "description": "Every node serves reads from its local replica; admin commands are "
                                "forwarded to the leader. Every answer names the seq it reflects."},
        "paths": _paths(),
        "components": {"schemas": _schemas(),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


DOCUMENT_BYTES = codec.dumps(document())  # built once: the document does not change while serving


async def get_openapi(request: web.Request) -> web.Response:
    resp = web.Response(body=DOCUMENT_BYTES, content_type="application/json")
    resp.headers[SEQ_HEADER] = str(ctx_of(request).feed.seq)
    return resp
