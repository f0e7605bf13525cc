"""A node starts from its ELM's folded state and loads the older records afterwards
(issue 11: a 100-behind join must not cost a copy of the whole log). The feed answers the
current view at once; reads of older records wait for them, then answer exactly as a feed
built from every record does; a replaced replica (S17) ends the load."""

from __future__ import annotations

import asyncio

import pytest

from events import codec
from projections.state import ClusterState, fold
from roster.history_gen import make_history
from roster.http.app import create_app
from roster.http.feed import CHECKPOINT_EVERY_RECORDS, HistoryLoading, ReplicaFeed
from tests.http_support import TOKEN, client_for, refuse_admin, static_health

EVENTS = 2_500  # more than two checkpoints before the start, one after


@pytest.fixture(scope="module")
def history():
    return make_history(EVENTS + 300, seed=11, n_nodes=6)


def started_feed(records, start: int) -> ReplicaFeed:
    return ReplicaFeed.from_state("n01", fold(ClusterState(), records[:start]))


def load_all(feed: ReplicaFeed, records, chunk: int = 700) -> None:
    while (todo := feed.history_to_load) is not None:
        first, last = todo
        feed.load_history(list(records[first - 1 : min(last, first + chunk - 1)]))


def test_the_current_view_is_there_before_any_record(history):
    feed = started_feed(history, EVENTS)
    full = ReplicaFeed.from_records("n01", history[:EVENTS])
    assert not feed.loaded and feed.history_to_load == (1, EVENTS)
    assert (feed.seq, feed.hash, feed.state.digest()) == (full.seq, full.hash, full.state.digest())
    assert feed.state_at(EVENTS) is feed.state and feed.hash_at(EVENTS) == full.hash
    for read in (lambda: feed.page(1, 10), lambda: feed.state_at(5), lambda: feed.hash_at(3), feed.history):
        with pytest.raises(HistoryLoading):
            read()


def test_loaded_in_chunks_with_appends_between_it_reads_as_a_full_feed(history):
    feed, total = started_feed(history, EVENTS), len(history)
    feed.append(list(history[EVENTS : EVENTS + 150]))  # committed while the older records load
    load_all(feed, history[:EVENTS])
    feed.append(list(history[EVENTS + 150 :]))
    full = ReplicaFeed.from_records("n01", history)
    assert feed.loaded and feed.history_to_load is None
    assert [r.hash for r in feed.records] == [r.hash for r in full.records]
    assert feed.type_counts == full.type_counts
    # Every checkpoint, before and after the start, sits at its boundary: time travel agrees.
    assert [c.seq for c in feed._checkpoints] == [k * CHECKPOINT_EVERY_RECORDS for k in range(1, total // CHECKPOINT_EVERY_RECORDS + 1)]
    for seq in (1, 999, 1000, 1001, EVENTS - 1, EVENTS + 1, EVENTS + 149, total - 1):
        assert feed.state_at(seq).digest() == full.state_at(seq).digest(), seq
    assert feed.page(EVENTS - 5, 20) == full.page(EVENTS - 5, 20)


def test_a_history_that_does_not_end_on_the_start_is_refused(history):
    feed = started_feed(history, 300)
    other = make_history(300, seed=12, n_nodes=6)
    with pytest.raises(ValueError):
        load_all(feed, other)
    assert not feed.loaded
    with pytest.raises(ValueError):
        feed.load_history(list(history[5:10]))  # not from the next seq


def test_S17_a_replaced_replica_ends_the_load(history):
    feed = started_feed(history, EVENTS)
    feed.load_history(list(history[:100]))
    other = make_history(400, seed=13, n_nodes=6)
    feed.replace(list(other))
    assert feed.loaded and feed.seq == 400 and feed.hash == other[-1].hash
    feed.load_history(list(history[100:200]))  # a late chunk of the old history: ignored
    assert feed.page(1, 3)[0] == list(other[:3])


async def test_reads_of_older_records_wait_for_them_then_answer(history):
    feed = started_feed(history, EVENTS)
    app = create_app(feed, admin=refuse_admin, health=static_health(feed), token=TOKEN)
    async with client_for(app) as client:
        head = await client.get("/v1/membership")
        assert head.status == 200 and (await head.json())["seq"] == EVENTS
        pending = asyncio.ensure_future(client.get("/v1/events", params={"from": "1", "limit": "5"}))
        await asyncio.sleep(0.2)
        assert not pending.done()  # waiting for the records, not answering without them
        load_all(feed, history[:EVENTS])
        resp = await pending
        assert resp.status == 200
        doc = await resp.json()
        assert [e["seq"] for e in doc["events"]] == [1, 2, 3, 4, 5]
        assert doc["events"][0] == codec.envelope(history[0])
        past = await client.get("/v1/membership", params={"at": "1200"})
        assert past.status == 200 and (await past.json())["seq"] == 1200


async def test_reads_of_older_records_that_never_load_get_a_503_with_retry_after(history, monkeypatch):
    monkeypatch.setattr("roster.http.errors.HISTORY_WAIT_S", 0.2)
    feed = started_feed(history, EVENTS)
    app = create_app(feed, admin=refuse_admin, health=static_health(feed), token=TOKEN)
    async with client_for(app) as client:
        resp = await client.get("/v1/events", params={"from": "1"})
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        doc = await resp.json()
        assert doc["error"] == "history_loading" and doc["seq"] == EVENTS
        metrics = await (await client.get("/metrics")).text()
        assert "roster_replica_seq" in metrics and "roster_events_total" not in metrics
        load_all(feed, history[:EVENTS])
        assert "roster_events_total" in await (await client.get("/metrics")).text()
        assert (await client.get("/v1/events", params={"from": "1"})).status == 200
