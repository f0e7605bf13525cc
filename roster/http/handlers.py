"""What every handler shares: the app's context, strict parameter parsing, and answers that
carry the seq they reflect (body `seq`, `ETag`, `X-Roster-Seq`) with `If-None-Match` → 304.

Parameters are parsed strictly: an unknown query parameter, a repeated one, a seq that is not
plain ASCII digits (Python's int() would take "١٢" or "1_000") — each is a 422 naming it.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web
from multidict import CIMultiDict

from actors.admin import NAME_PATTERN
from projections import replay
from roster.http.errors import SEQ_HEADER, ApiError, invalid
from roster.http.feed import AdminPort, HealthPort, ReplicaFeed

MAX_SEQ = 10**18 - 1  # 18 digits: any real seq, and still an int64 for clients
DEFAULT_WAIT_MS = 5_000  # ?min_seq waits this long unless ?timeout_ms says otherwise
MAX_WAIT_MS = 30_000  # a longer wait is refused: it would pin a connection for minutes
ETAG_HASH_CHARS = 16  # hex chars of the chain hash in an ETag: a replaced history never reuses one
VIEW_CACHE_ENTRIES = 64  # encoded views kept (head views and recent time-travel points)
LEADER_VIEW_TIMEOUT_S = 1.0  # a node detail waits this long for the leader's heartbeat view
_DIGITS = re.compile(r"[0-9]{1,18}")

# node id -> {"leader", "last_heartbeat_age_ms", "as_of", "detail"}: the leader's view of when it
# last heard that node (only the leader's core sees every heartbeat; the Ray node actor asks it).
LeaderViewPort = Callable[[str], Awaitable[dict[str, Any]]]


def unknown_leader_view(detail: str, leader: str | None = None) -> dict[str, Any]:
    return {"leader": leader, "last_heartbeat_age_ms": None, "as_of": None, "detail": detail}


async def no_leader_view(node: str) -> dict[str, Any]:
    return unknown_leader_view("this runtime keeps no heartbeat times")


class Prepared:
    """One encoded JSON answer and its headers, made once per (view, seq) and served many times."""

    __slots__ = ("body", "etag", "headers", "headers_304")

    def __init__(self, body: bytes, seq: int, hash_: str) -> None:
        self.body, self.etag = body, etag(seq, hash_)
        self.headers_304 = CIMultiDict({"ETag": self.etag, SEQ_HEADER: str(seq)})
        self.headers = CIMultiDict({"Content-Type": "application/json", "ETag": self.etag, SEQ_HEADER: str(seq)})

    def respond(self, request: web.Request) -> web.Response:
        """200 with the body, or 304 when the client already holds this seq's answer."""
        inm = request.headers.get("If-None-Match")
        if inm is not None and _matches(inm, self.etag):
            return web.Response(status=304, headers=self.headers_304)
        return web.Response(body=self.body, headers=self.headers)


class ViewCache:
    """Prepared answers by (kind, seq, hash): a view is serialised once per seq, not per request."""

    def __init__(self, max_entries: int = VIEW_CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, Prepared] = OrderedDict()
        self.builds = 0  # how many times a body was encoded (tests check the cache is used)

    def get(self, key: tuple, build: Callable[[], Prepared]) -> Prepared:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry
        entry = build()
        self.builds += 1
        self._entries[key] = entry
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry


@dataclass
class Ctx:
    feed: ReplicaFeed
    admin: AdminPort
    health: HealthPort
    token: bytes
    cluster_name: str | None = None
    cache: ViewCache = field(default_factory=ViewCache)
    closing: bool = False  # set on shutdown: open event streams end
    leader_view: LeaderViewPort = no_leader_view


CTX = web.AppKey("roster_ctx", Ctx)


def ctx_of(request: web.Request) -> Ctx:
    return request.app[CTX]


# --- parameters ------------------------------------------------------------------------------------


def check_query(request: web.Request, allowed: frozenset[str]) -> Mapping[str, str]:
    """The query, refused (422) when it names a parameter the route does not take, or repeats one."""
    q = request.query
    if not q:
        return q
    for key in q:
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise invalid(f"unknown query parameter {key!r} (this route takes: {names})")
        if len(q.getall(key)) > 1:
            raise invalid(f"query parameter {key!r} given more than once")
    return q


def parse_int(text: str, name: str, lo: int = 0, hi: int = MAX_SEQ) -> int:
    if not _DIGITS.fullmatch(text):
        raise invalid(f"{name} must be a whole number {lo}..{hi}, not {text[:40]!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise invalid(f"{name} must be {lo}..{hi}, not {value}")
    return value


def int_param(q: Mapping[str, str], name: str, default: int | None, lo: int = 0, hi: int = MAX_SEQ) -> int | None:
    text = q.get(name)
    return default if text is None else parse_int(text, name, lo, hi)


def bool_param(q: Mapping[str, str], name: str, default: bool = False) -> bool:
    text = q.get(name)
    if text is None:
        return default
    if text.lower() in ("true", "1", "yes", ""):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise invalid(f"{name} must be true or false, not {text[:40]!r}")


def name_ok(text: str) -> bool:
    return bool(NAME_PATTERN.match(text))


def parse_time_param(text: str, name: str) -> datetime:
    """An ISO-8601 time as an aware UTC datetime (422 when unreadable or out of range)."""
    try:
        return replay.parse_time(text).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise invalid(f"{name} must be a seq or an ISO-8601 time (e.g. 2026-01-01T00:00:05Z), not {text[:40]!r}") from None


# --- the seq a read reflects ----------------------------------------------------------------------------


async def wait_replica(ctx: Ctx, q: Mapping[str, str]) -> None:
    """`?min_seq=SEQ[&timeout_ms=]`: wait (bounded) until this replica has applied SEQ; 504 if not."""
    min_seq = int_param(q, "min_seq", None)
    timeout_ms = int_param(q, "timeout_ms", DEFAULT_WAIT_MS, 0, MAX_WAIT_MS)
    if min_seq is None or ctx.feed.seq >= min_seq:
        return
    assert timeout_ms is not None
    if not await ctx.feed.wait_for_seq(min_seq, timeout_ms / 1000):
        raise ApiError(504, "replica_behind",
                       f"this replica has applied seq {ctx.feed.seq}, not yet {min_seq} (waited {timeout_ms} ms)")


def seq_at(ctx: Ctx, text: str) -> int:
    """`?at=` as a seq of this replica: digits are a seq, anything else an ISO-8601 time."""
    if text.isascii() and text.isdigit():
        seq = parse_int(text, "at")
        if seq > ctx.feed.seq:
            raise ApiError(404, "seq_not_found", f"seq {seq} is beyond this replica's head (seq {ctx.feed.seq}); "
                                                 f"add min_seq={seq} to wait for it")
        return seq
    return ctx.feed.seq_at_time(parse_time_param(text, "at"))


async def view_seq(ctx: Ctx, q: Mapping[str, str]) -> int:
    """The seq a state read reflects: wait for `min_seq` first, then `at` (default: the head)."""
    await wait_replica(ctx, q)
    at = q.get("at")
    return ctx.feed.seq if at is None else seq_at(ctx, at)


# --- answers -----------------------------------------------------------------------------------------------


def etag(seq: int, hash_: str) -> str:
    return f'"{seq}-{hash_[:ETAG_HASH_CHARS]}"'


def _matches(header: str, tag: str) -> bool:
    for candidate in header.split(","):
        c = candidate.strip()
        if c == "*" or c.removeprefix("W/") == tag:
            return True
    return False


def answer(request: web.Request, body: bytes, seq: int, hash_: str) -> web.Response:
    """200 with the JSON body, or 304 when the client already holds this seq's answer."""
    return Prepared(body, seq, hash_).respond(request)


async def leader_view_of(ctx: Ctx, node: str) -> dict[str, Any]:
    """The leader's view of `node`'s heartbeats, bounded in time; unknown when it cannot say."""
    try:
        return await asyncio.wait_for(ctx.leader_view(node), LEADER_VIEW_TIMEOUT_S)
    except asyncio.TimeoutError:
        return unknown_leader_view(f"the leader did not answer within {LEADER_VIEW_TIMEOUT_S:g} s")


def live_answer(body: bytes, seq: int) -> web.Response:
    """A 200 that holds a live value (it changes without the seq changing): no ETag, no 304."""
    return web.Response(body=body, headers={"Content-Type": "application/json", SEQ_HEADER: str(seq),
                                            "Cache-Control": "no-store"})
