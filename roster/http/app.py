"""The HTTP app every node serves: `create_app(feed, admin=, health=, token=)`.

Reads come from the node's local replica (the ReplicaFeed); admin commands go through the
AdminPort (the node forwards them to the leader). Bound to 127.0.0.1 unless configured.
The admin token is the caller's (roster.datadir keeps it in `<data dir>/admin.token`, 0600).
"""

from __future__ import annotations

from aiohttp import web

from roster.http.admin_routes import ADMIN_BODY_MAX_BYTES
from roster.http.errors import make_history_middleware, make_middleware
from roster.http.feed import AdminPort, HealthPort, ReplicaFeed
from roster.http.handlers import CTX, Ctx, LeaderViewPort
from roster.http.metrics import REGISTRY, SOURCE, MetricsSource, http_histogram, make_registry, make_timing_middleware
from roster.http.routes import add_routes

DEFAULT_HOST = "127.0.0.1"  # reachable from this machine only, unless the operator says otherwise
DEFAULT_PORT = 8700


def create_app(feed: ReplicaFeed, *, admin: AdminPort, health: HealthPort, token: str,
               cluster_name: str | None = None, metrics_source: MetricsSource | None = None,
               leader_view: LeaderViewPort | None = None) -> web.Application:
    """The app of one node. An empty `token` disables admin commands (each answers 401).
    `metrics_source` adds the runtime's histograms to /metrics; `leader_view` answers the
    leader's last-heartbeat age for `/v1/nodes/{id}` (both from the Ray node actor)."""
    if not isinstance(token, str):
        raise TypeError("the admin token must be a string")
    ctx = Ctx(feed=feed, admin=admin, health=health, token=token.strip().encode(), cluster_name=cluster_name)
    if leader_view is not None:
        ctx.leader_view = leader_view
    http_hist = http_histogram()
    app = web.Application(middlewares=[make_timing_middleware(http_hist),
                                       make_middleware(lambda request: request.app[CTX].feed.seq),
                                       make_history_middleware(lambda request: request.app[CTX].feed)],
                          client_max_size=ADMIN_BODY_MAX_BYTES)
    app[CTX] = ctx
    app[REGISTRY] = make_registry(ctx, http_hist, metrics_source)
    if metrics_source is not None:
        app[SOURCE] = metrics_source
    add_routes(app)

    async def end_streams(_app: web.Application) -> None:
        ctx.closing = True  # open SSE streams see it on wake, and end before the server waits for them
        feed.wake()

    app.on_shutdown.append(end_streams)
    return app


async def serve(app: web.Application, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> tuple[web.AppRunner, int]:
    """Start serving `app`; returns the runner (call `cleanup()` to stop) and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port  # the real port when asked for port 0
    return runner, bound
