"""The web dashboard: `GET /` and `GET /static/{name}`, served from the package (roster/static).

The page is static HTML, CSS and plain JavaScript (no build step, no CDN): it reads the same
public API as any client (`/v1/membership`, `/v1/events`, `/v1/events/stream`) and sends admin
commands with the token the user types in (kept in the browser's sessionStorage, never in a URL).

Only the files named in STATIC_TYPES are served (no path from the request reaches the file
system). Every answer carries a Content-Security-Policy that allows this origin only: no
inline script or style, no third-party request, no framing.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources

from aiohttp import web

from roster.http.errors import not_found

INDEX = "index.html"
STATIC_TYPES = {  # the files the page is made of, and their content types
    INDEX: "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidate (cheap: the ETag) so an upgraded node serves its own page
}


class Asset:
    __slots__ = ("body", "content_type", "etag")

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body, self.content_type = body, content_type
        self.etag = '"%s"' % hashlib.blake2b(body, digest_size=8).hexdigest()


@lru_cache(maxsize=None)
def asset(name: str) -> Asset:
    """One file of roster/static, read once (package data does not change while serving)."""
    data = resources.files("roster").joinpath("static", name).read_bytes()
    return Asset(data, STATIC_TYPES[name])


def _serve(request: web.Request, name: str) -> web.Response:
    a = asset(name)
    headers = {**SECURITY_HEADERS, "ETag": a.etag}
    inm = request.headers.get("If-None-Match", "")
    if a.etag in (t.strip().removeprefix("W/") for t in inm.split(",")):
        return web.Response(status=304, headers=headers)
    return web.Response(body=a.body, headers={**headers, "Content-Type": a.content_type})


async def get_index(request: web.Request) -> web.Response:
    """The page. Query parameters (`?seq=`, `?node=`, `?type=`) are the page's own state: ignored here."""
    return _serve(request, INDEX)


async def get_static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_TYPES or name == INDEX:
        raise not_found("not_found", f"no static file {name[:64]!r}")
    return _serve(request, name)


def add_dashboard_routes(app: web.Application) -> None:
    """Served beside the API; not part of it (the OpenAPI document lists the API only)."""
    app.router.add_get("/", get_index)
    app.router.add_get("/static/{name}", get_static)
