"""`GET /v1/events/stream`: server-sent events with `id: <seq>`, resumable without loss."""

from __future__ import annotations

import asyncio
import random
import time

from aiohttp import ClientResponse

from events import codec
from roster.history_gen import make_history
from roster.http import stream
from roster.http.app import create_app
from roster.http.feed import SUBSCRIBER_QUEUE_MAX_BATCHES, ReplicaFeed
from tests.http_support import TOKEN, client_for, refuse_admin, static_health

HISTORY = make_history(400, seed=11, n_nodes=5)
READ_TIMEOUT_S = 5.0


def make_app(records):
    feed = ReplicaFeed.from_records("n01", records)
    return create_app(feed, admin=refuse_admin, health=static_health(feed), token=TOKEN), feed


async def next_event(resp: ClientResponse) -> tuple[str, str | None, str]:
    """(event type, id, data) of the next event; comments are skipped."""
    ev_id, ev_type, data = None, "message", []
    while True:
        line = (await asyncio.wait_for(resp.content.readline(), READ_TIMEOUT_S)).decode().rstrip("\n")
        if line == "":
            if data:
                return ev_type, ev_id, "\n".join(data)
            continue
        if line.startswith(":") or line.startswith("retry:"):
            continue
        key, _, value = line.partition(": ")
        if key == "id":
            ev_id = value
        elif key == "event":
            ev_type = value
        elif key == "data":
            data.append(value)


async def read_seqs(resp: ClientResponse, n: int) -> list[int]:
    out = []
    for _ in range(n):
        _, ev_id, data = await next_event(resp)
        env = codec.loads(data)
        assert ev_id == str(env["seq"])
        out.append(env["seq"])
    return out


async def test_stream_replays_then_follows_live_appends():
    app, feed = make_app(HISTORY[:100])
    async with client_for(app) as client:
        resp = await client.get("/v1/events/stream", params={"from": "1"})
        assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
        _, _, first = await next_event(resp)
        assert codec.loads(first) == codec.envelope(HISTORY[0])
        assert await read_seqs(resp, 99) == list(range(2, 101))
        feed.append(HISTORY[100:150])
        assert await read_seqs(resp, 50) == list(range(101, 151))
        resp.close()


async def test_resume_with_last_event_id_misses_nothing():
    rng = random.Random(4)
    app, feed = make_app(HISTORY[:50])
    got: list[int] = []
    async with client_for(app) as client:
        resp = await client.get("/v1/events/stream", params={"from": "1"})
        appended = 50
        while True:
            available = appended - len(got)
            if appended == len(HISTORY):
                got += await read_seqs(resp, available)
                break
            got += await read_seqs(resp, rng.randint(0, available))
            resp.close()  # the client drops; more is committed while it is away
            more = rng.randint(1, 60)
            feed.append(HISTORY[appended : appended + more])
            appended = min(appended + more, len(HISTORY))
            headers = {"Last-Event-ID": str(got[-1])} if got else {}
            resp = await client.get("/v1/events/stream", params={} if got else {"from": "1"}, headers=headers)
        resp.close()
    assert got == list(range(1, len(HISTORY) + 1))


async def test_resume_on_a_replica_that_is_behind_waits_for_it():
    app_a, _ = make_app(HISTORY)
    app_b, feed_b = make_app(HISTORY[:200])
    async with client_for(app_a) as a, client_for(app_b) as b:
        resp = await a.get("/v1/events/stream", params={"from": "1"})
        seen = await read_seqs(resp, 300)
        resp.close()
        resp = await b.get("/v1/events/stream", headers={"Last-Event-ID": str(seen[-1])})
        asyncio.get_running_loop().call_later(0.05, feed_b.append, HISTORY[200:])
        seen += await read_seqs(resp, 100)
        resp.close()
    assert seen == list(range(1, 401))


async def test_default_start_is_the_next_new_event_and_filters_apply():
    app, feed = make_app(HISTORY[:300])
    async with client_for(app) as client:
        live = await client.get("/v1/events/stream")
        assert live.headers["X-Roster-Seq"] == "300"
        only = await client.get("/v1/events/stream", params={"from": "1", "type": "NodeJoined"})
        feed.append(HISTORY[300:])
        assert await read_seqs(live, 5) == [301, 302, 303, 304, 305]
        joined = [r.seq for r in HISTORY if r.event.type == "NodeJoined"]
        assert await read_seqs(only, len(joined)) == joined
        live.close()
        only.close()


async def test_bad_stream_input_is_422():
    app, _ = make_app(HISTORY[:10])
    async with client_for(app) as client:
        for params, headers in (({"from": "x"}, {}), ({"from": "0"}, {}), ({}, {"Last-Event-ID": "abc"}),
                                ({"type": "Nope"}, {}), ({"junk": "1"}, {})):
            resp = await client.get("/v1/events/stream", params=params, headers=headers)
            assert resp.status == 422, (params, headers)
            assert (await resp.json())["error"] == "invalid_argument"


async def test_keepalives_and_reset_on_a_replaced_history(monkeypatch):
    monkeypatch.setattr(stream, "KEEPALIVE_S", 0.05)
    app, feed = make_app(HISTORY[:20])
    async with client_for(app) as client:
        resp = await client.get("/v1/events/stream")
        lines = [(await asyncio.wait_for(resp.content.readline(), READ_TIMEOUT_S)).decode() for _ in range(5)]
        assert ": keepalive\n" in lines
        feed.replace(make_history(30, seed=99, n_nodes=3))
        ev_type, _, data = await next_event(resp)
        assert ev_type == "reset" and codec.loads(data) == {"seq": 30}
        assert await asyncio.wait_for(resp.content.read(), READ_TIMEOUT_S) is not None  # the server ended it


async def test_shutdown_ends_open_streams_promptly():
    app, _ = make_app(HISTORY[:20])
    started = time.monotonic()
    async with client_for(app) as client:
        streams = [await client.get("/v1/events/stream") for _ in range(3)]
        assert all(s.status == 200 for s in streams)
    assert time.monotonic() - started < 5  # not the 60 s a lingering handler would cost


def test_a_stalled_subscriber_is_dropped_and_ends_cleanly():
    history = make_history(SUBSCRIBER_QUEUE_MAX_BATCHES + 10, seed=12, n_nodes=4)
    feed = ReplicaFeed.from_records("n01", history[:1])
    q = feed.subscribe()
    for r in history[1 : SUBSCRIBER_QUEUE_MAX_BATCHES + 2]:
        feed.append([r])
    assert q.dropped and not q.finished and q.qsize() == SUBSCRIBER_QUEUE_MAX_BATCHES
    while not q.empty():
        q.get_nowait()
    assert q.finished
    feed.append(history[SUBSCRIBER_QUEUE_MAX_BATCHES + 2 : SUBSCRIBER_QUEUE_MAX_BATCHES + 3])
    assert q.empty()  # no longer fed
