"""The route table: every route the app serves, in one place (the OpenAPI document and the
schema tests are checked against it)."""

from __future__ import annotations

from typing import Awaitable, Callable, NamedTuple

from aiohttp import web

from roster.http import admin_routes, dashboard, metrics, openapi, query, stream, svc


class Route(NamedTuple):
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]


SVC_PATH = "/svc/{group}/{path}"  # {path}: the rest of the path, slashes and all
SVC_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # forwarded to the group's service as they come

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/membership", query.get_membership),
    Route("GET", "/v1/config", query.get_config),
    Route("GET", "/v1/nodes/{id}", query.get_node),
    Route("GET", "/v1/nodes/{id}/timeline", query.get_timeline),
    Route("GET", "/v1/events", query.get_events),
    Route("GET", "/v1/events/stream", stream.get_stream),
    Route("GET", "/healthz", query.get_health),
    Route("GET", "/metrics", metrics.get_metrics),
    Route("GET", "/openapi.json", openapi.get_openapi),
    Route("POST", "/v1/nodes", admin_routes.post_add_node),
    Route("POST", "/v1/nodes/{id}/pause", admin_routes.post_pause),
    Route("POST", "/v1/nodes/{id}/resume", admin_routes.post_resume),
    Route("POST", "/v1/nodes/{id}/evict", admin_routes.post_evict),
    Route("POST", "/v1/nodes/{id}/leave", admin_routes.post_leave),
    Route("POST", "/v1/groups", admin_routes.post_group_create),
    Route("POST", "/v1/groups/{name}/move", admin_routes.post_group_move),
    Route("DELETE", "/v1/groups/{name}", admin_routes.delete_group),
    Route("POST", "/v1/groups/{name}/online", admin_routes.post_group_online),
    Route("POST", "/v1/groups/{name}/offline", admin_routes.post_group_offline),
    Route("POST", "/v1/groups/{name}/resources/{resource}/restart", admin_routes.post_resource_restart),
    Route("POST", "/v1/apply", admin_routes.post_apply),
    Route("POST", "/v1/cluster/stop", admin_routes.post_cluster_stop),
    Route("GET", "/v1/groups/{name}", svc.get_group),
    *(Route(method, SVC_PATH, svc.forward) for method in SVC_METHODS),
)


def _pattern(path: str) -> str:
    """aiohttp's default segment pattern leaves out '{' and '}': such a name would miss the
    route (and skip the token check); every segment reaches its handler, which judges it."""
    return (path.replace("{id}", "{id:[^/]+}").replace("{name}", "{name:[^/]+}")
            .replace("{group}", "{group:[^/]+}").replace("{resource}", "{resource:[^/]+}").replace("{path}", "{path:.*}"))


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, _pattern(route.path), route.handler)
    svc.setup(app)
    dashboard.add_dashboard_routes(app)  # the web page (GET / and /static/...): not part of the API
