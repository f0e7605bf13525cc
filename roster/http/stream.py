"""`GET /v1/events/stream`: the replica's records as server-sent events, `id: <seq>` each.

The stream reads the feed's records by seq (a cursor), not a push queue: a slow client is
held back by TCP (each write waits for the socket to drain) and can never make the node
buffer without bound, and a client that reconnects with `Last-Event-ID` (or `?from=`) gets
every record after it, on any node (a replica behind that seq waits until it has it).
"""

from __future__ import annotations

from typing import Mapping

from aiohttp import web

from events import codec
from events.record import Record
from projections import replay
from roster.http.errors import SEQ_HEADER, invalid
from roster.http.feed import ReplicaFeed
from roster.http.handlers import check_query, ctx_of, int_param, parse_int
from roster.http.query import events_filters

KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
RETRY_MS = 1000  # EventSource clients reconnect after this long
BATCH_RECORDS = 500  # records per socket write when catching up
STREAM_PARAMS = frozenset({"from", "type", "node"})
HEADER_BLANKS = " \t"  # HTTP's optional whitespace around a header value (RFC 9110 OWS), nothing else


def start_seq(request: web.Request, q: Mapping[str, str], feed: ReplicaFeed) -> int:
    """The first seq to send: after Last-Event-ID (a reconnect), else `?from=`, else the next new one."""
    start = int_param(q, "from", None)  # checked even when Last-Event-ID wins: bad input is a 422
    if start is not None and start < 1:
        raise invalid("from must be a seq (1 or more)")
    last_id = (request.headers.get("Last-Event-ID") or "").strip(HEADER_BLANKS)
    if last_id:  # empty: no id yet (what an EventSource that saw no id sends)
        return parse_int(last_id, "Last-Event-ID") + 1
    return feed.seq + 1 if start is None else start


def event_bytes(r: Record) -> bytes:
    return b"id: %d\ndata: %s\n\n" % (r.seq, codec.encode(r))


def _matches(r: Record, type_: str | None, node: str | None) -> bool:
    return (type_ is None or r.event.type == type_) and (node is None or replay.names_node(r, node))


async def get_stream(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    q = check_query(request, STREAM_PARAMS)
    feed = ctx.feed
    feed.history()  # HistoryLoading (the middleware waits for it) before the stream begins
    cursor = start_seq(request, q, feed) - 1  # the last seq looked at
    type_, node = events_filters(q)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no", SEQ_HEADER: str(feed.seq)})
    await resp.prepare(request)
    generation = feed.generation
    try:
        await resp.write(b"retry: %d\n: roster events, replica head seq %d\n\n" % (RETRY_MS, feed.seq))
        while not ctx.closing:
            if feed.generation != generation:  # the replica became a different history (S17)
                await resp.write(b"event: reset\ndata: %s\n\n" % codec.dumps({"seq": feed.seq}))
                break
            if feed.seq > cursor:
                batch = feed.history()[cursor : min(cursor + BATCH_RECORDS, feed.seq)]
                cursor = batch[-1].seq
                chunk = b"".join(event_bytes(r) for r in batch if _matches(r, type_, node))
                if chunk:
                    await resp.write(chunk)
                continue
            moved = await feed.wait_until(
                lambda: feed.seq > cursor or feed.generation != generation or ctx.closing, KEEPALIVE_S)
            if not moved:
                await resp.write(b": keepalive\n\n")
    except ConnectionResetError:
        pass  # the client went away; it resumes with Last-Event-ID
    return resp
