"""Every error the HTTP app returns is a JSON body `{"error", "detail", "seq"}`.

Handlers raise `ApiError`; the middleware turns it, aiohttp's own HTTP exceptions (no such
route, method not allowed, body too large) and anything unexpected into that shape. An
unexpected exception is a 500 with a generic detail (logged here, never echoed: it could
hold request data such as a token).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from aiohttp import web

from events import codec
from roster.http.feed import HISTORY_RETRY_AFTER_S, HistoryLoading, ReplicaFeed

log = logging.getLogger("roster.http")

HISTORY_WAIT_S = 5.0  # a read of older records waits this long for a starting node to load them
SEQ_HEADER = "X-Roster-Seq"  # the replica seq a response reflects, on every response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SeqSource = Callable[[web.Request], int]

_SLUGS = {  # aiohttp's own exceptions, as error codes
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_argument",
    503: "unavailable",
    504: "replica_behind",
}


class ApiError(Exception):
    """An error answer: HTTP status, a stable machine-readable code, and a one-line detail."""

    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None,
                 extra: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers or {}
        self.extra = extra or {}  # more fields of the body, e.g. the request id to look up


def invalid(detail: str) -> ApiError:
    return ApiError(422, "invalid_argument", detail)


def not_found(error: str, detail: str) -> ApiError:
    return ApiError(404, error, detail)


def json_error(status: int, error: str, detail: str, seq: int, headers: dict[str, str] | None = None,
               extra: dict[str, str] | None = None) -> web.Response:
    body = codec.dumps({"error": error, "detail": detail, "seq": seq, **(extra or {})})
    resp = web.Response(status=status, body=body, content_type="application/json")
    resp.headers[SEQ_HEADER] = str(seq)
    if headers:
        resp.headers.update(headers)
    return resp


def make_middleware(seq_of: SeqSource) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return json_error(exc.status, exc.error, exc.detail, seq_of(request), exc.headers, exc.extra)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise  # redirects and 304s are answers, not errors
            headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            detail = _http_detail(request, exc)
            return json_error(exc.status, _SLUGS.get(exc.status, "http_error"), detail, seq_of(request), headers)
        except (asyncio.CancelledError, ConnectionResetError):
            raise  # the client went away: nothing to answer
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.path)
            return json_error(500, "internal_error", "the server failed to answer; see the node's log",
                              seq_of(request))

    return errors


def make_history_middleware(feed_of: Callable[[web.Request], ReplicaFeed]) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """A read of records a starting node is still loading waits for them (once), then 503."""
    @web.middleware
    async def history(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except HistoryLoading as exc:
            feed = feed_of(request)
            if not await feed.wait_until(lambda: feed.loaded, HISTORY_WAIT_S):
                raise ApiError(503, "history_loading", f"this node is starting: {exc}",
                               headers={"Retry-After": str(HISTORY_RETRY_AFTER_S)}) from None
            return await handler(request)  # only reads raise it, before answering anything

    return history


def _http_detail(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"no route {request.path}; see /openapi.json"
    if exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        return f"{request.method} is not allowed on {request.path} (allowed: {allowed or 'none'})"
    if exc.status == 413:
        return "request body too large"
    return exc.reason
