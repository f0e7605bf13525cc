"""The HTTP app every node serves: `create_app(feed, admin=, health=, token=)`.

Reads come from the node's local replica (the ReplicaFeed); admin commands go through the
AdminPort (the node forwards them to the leader). Bound to 127.0.0.1 unless configured.
The admin token lives in `<data dir>/admin.token` (mode 0600); `ensure_token` makes one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from aiohttp import web

from roster.http.admin_routes import ADMIN_BODY_MAX_BYTES
from roster.http.errors import make_middleware
from roster.http.feed import AdminPort, HealthPort, ReplicaFeed
from roster.http.handlers import CTX, Ctx
from roster.http.metrics import REGISTRY, make_registry
from roster.http.routes import add_routes

DEFAULT_HOST = "127.0.0.1"  # reachable from this machine only, unless the operator says otherwise
DEFAULT_PORT = 8700
TOKEN_FILE = "admin.token"
TOKEN_BYTES = 32  # 256 bits of randomness, URL-safe base64 in the file
TOKEN_FILE_MODE = 0o600


def create_app(feed: ReplicaFeed, *, admin: AdminPort, health: HealthPort, token: str,
               cluster_name: str | None = None) -> web.Application:
    if not isinstance(token, str) or not token.strip():
        raise ValueError("the admin token must be a non-empty string")
    ctx = Ctx(feed=feed, admin=admin, health=health, token=token.strip().encode(), cluster_name=cluster_name)
    app = web.Application(middlewares=[make_middleware(lambda request: request.app[CTX].feed.seq)],
                          client_max_size=ADMIN_BODY_MAX_BYTES)
    app[CTX] = ctx
    app[REGISTRY] = make_registry(ctx)
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
    server = site._server  # the bound port, when asked for port 0
    bound = server.sockets[0].getsockname()[1] if server is not None and server.sockets else port  # type: ignore[union-attr]
    return runner, bound


def read_token(data_dir: str | os.PathLike[str]) -> str | None:
    path = Path(data_dir) / TOKEN_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return text or None


def ensure_token(data_dir: str | os.PathLike[str]) -> str:
    """The admin token of this data dir, made (random, mode 0600) when there is none yet."""
    existing = read_token(data_dir)
    if existing is not None:
        return existing
    path = Path(data_dir) / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, TOKEN_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token
