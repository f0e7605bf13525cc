"""The histograms of issue 12 §6 and the leader's heartbeat view of §1, without Ray: the HTTP
duration middleware on a real app, and the node shell's observer driven with real messages
and records (the same calls the Ray node actor makes)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors import messages as m
from actors.node_state import Following, LeaderState
from events import types as t
from events.record import Record
from roster.history_gen import make_history
from roster.http.app import create_app
from roster.http.feed import ReplicaFeed
from roster.latency import LatencyHistogram
from roster.ray_runtime import observer as obs
from roster.ray_runtime.observer import NodeObserver, iso_ms, ts_ms
from tests.http_support import TOKEN, client_for, refuse_admin, static_health

HISTORY = make_history(80, seed=3, n_nodes=3)
T0_MS = 1_800_000_000_000  # a fixed wall-clock instant (2027-01-15), so ts round-trips exactly


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def record(seq: int, at_ms: int, event: t.Event, node: str | None) -> Record:
    return Record(seq=seq, epoch=1, ts=iso_ms(at_ms), node=node, by="n1", event=event, hash="0" * 32)


# --- HTTP request duration ---------------------------------------------------------------------------


async def test_issue12_s6_http_duration_by_route_method_and_status():
    feed = ReplicaFeed.from_records("n1", HISTORY)
    app = create_app(feed, admin=refuse_admin, health=static_health(feed), token=TOKEN)
    async with client_for(app) as client:
        for _ in range(3):
            assert (await client.get("/v1/membership")).status == 200
        assert (await client.get("/v1/membership", params={"bogus": "1"})).status == 422
        assert (await client.get("/v1/nodes/n02")).status == 200
        assert (await client.get("/v1/nodes/ghost")).status == 404
        assert (await client.get("/no/such/route")).status == 404
        resp = await client.get("/v1/events/stream", params={"from": "1"})
        assert resp.status == 200
        resp.close()
        text = await (await client.get("/metrics")).text()
    got = samples(text)
    name = "roster_http_request_duration_seconds_count"

    def count(route: str, status: str) -> float:
        return got.get((name, (("method", "GET"), ("route", route), ("status", status))), 0)

    assert count("/v1/membership", "200") == 3
    assert count("/v1/membership", "422") == 1
    assert count("/v1/nodes/{id}", "200") == 1 and count("/v1/nodes/{id}", "404") == 1
    assert count("unmatched", "404") == 1  # any unknown path: one label, not one per path
    assert not any(k[0] == name and ("route", "/v1/events/stream") in k[1] for k in got)  # streams are not timed
    buckets = [v for (n, labels), v in got.items() if n.endswith("_bucket") and ("route", "/v1/membership") in labels
               and ("status", "200") in labels]
    assert max(buckets) == 3  # the +Inf bucket holds every request


# --- the node shell's observer ---------------------------------------------------------------------------


def leader_core(**last_hb: int) -> SimpleNamespace:
    """What the observer reads of a NodeCore: its role, its leader and the role's real state object."""
    return SimpleNamespace(role="leader", leader="n1", role_state=LeaderState(since=0, lease_until=0, last_hb=dict(last_hb)))


def test_issue12_s6_heartbeat_gap_and_node_down_detection_as_the_leader_sees_it(monkeypatch):
    o = NodeObserver("n1")
    core = leader_core()
    o.core = core
    for at in (T0_MS, T0_MS + 300, T0_MS + 650):
        core.role_state.last_hb["n2"] = at  # the core accepted it (what NodeCore does for a member's heartbeat)
        o.after_step(m.Heartbeat(node="n2", epoch=1, applied_seq=5, sent_at=at - 1), at, core)
    rejected_at = T0_MS + 700  # not accepted (NotMember, fenced ...): no gap, no new last heartbeat
    o.after_step(m.Heartbeat(node="n2", epoch=1, applied_seq=5, sent_at=rejected_at), rejected_at, core)
    assert o.gap.labels("n2")._sum.get() == pytest.approx(0.65)
    assert o.last_hb_ms["n2"] == T0_MS + 650
    monkeypatch.setattr(obs, "now_ms", lambda: T0_MS + 900)
    view = o.leader_view_here("n2")
    assert view == {"leader": "n1", "last_heartbeat_age_ms": 250, "as_of": iso_ms(T0_MS + 900), "detail": None}
    assert o.leader_view_here("n1")["last_heartbeat_age_ms"] is None  # the leader sends itself none
    down_at = T0_MS + 650 + 2_100
    o.on_committed([record(40, down_at - 5, t.NodeDown(reason="regroup"), "n2")], down_at, leading=True)
    assert o.detection._sum.get() == pytest.approx(2.1)
    assert "n2" not in o.last_hb_ms and o.leader_view_here("n2")["last_heartbeat_age_ms"] is None


def test_issue12_s6_failover_duration_from_the_committed_records():
    o = NodeObserver("n1")
    o.core = leader_core()
    down = record(40, T0_MS, t.NodeDown(reason="regroup"), "n3")
    moved = record(41, T0_MS + 120, t.GroupMoved(group="web", from_node="n3", to_node="n2", reason="failover"), None)
    nowhere = record(42, T0_MS + 130, t.GroupMoved(group="db", from_node="n3", to_node=None, reason="failover"), None)
    o.on_committed([down, moved, nowhere], T0_MS + 150, leading=True)
    assert o.failover.labels("down")._sum.get() == pytest.approx(0.12)
    text = _exposition(o)
    assert samples(text)[("roster_group_failover_duration_seconds_count", (("cause", "down"),))] == 1  # not `db`
    exited = record(50, T0_MS + 1000, t.NodeExited(), "n2")
    moved2 = record(51, T0_MS + 1000, t.GroupMoved(group="web", from_node="n2", to_node="n1", reason="exit"), None)
    o.on_committed([exited, moved2], T0_MS + 1010, leading=False)  # a follower: the leader counts it
    assert samples(_exposition(o)).get(("roster_group_failover_duration_seconds_count", (("cause", "exit"),))) is None


def test_issue12_s6_round_trip_measured_by_the_follower():
    o = NodeObserver("n2")
    core = SimpleNamespace(role="follower", leader="n1", role_state=Following(contact_until=0, leader_heard_at=T0_MS + 4))
    o.core = core
    o.after_step(m.HeartbeatAck(leader="n1", epoch=1, committed_seq=9, sent_at=T0_MS), T0_MS + 4, core)
    stale = m.HeartbeatAck(leader="n1", epoch=0, committed_seq=9, sent_at=T0_MS)  # the core ignored it
    o.after_step(stale, T0_MS + 9, core)
    assert o.rtt._sum.get() == pytest.approx(0.004)
    assert samples(_exposition(o))[("roster_heartbeat_round_trip_seconds_count", ())] == 1


async def test_issue12_s6_append_latency_comes_from_the_log_owners_at_scrape_time():
    o = NodeObserver("n1")
    o.core = leader_core()
    replica, quorum = LatencyHistogram(), LatencyHistogram()
    for s in (0.0004, 0.003, 0.2):
        replica.observe(s)
    quorum.observe(0.004)

    async def fetched(h: LatencyHistogram) -> LatencyHistogram:
        return h.copy()  # what a Ray call returns: a copy

    o.append_sources = {"replica": lambda: fetched(replica), "quorum": lambda: fetched(quorum)}
    await o.refresh()
    got = samples(_exposition(o))
    name = "roster_log_append_duration_seconds"
    assert got[(name + "_count", (("log", "replica"),))] == 3
    assert got[(name + "_bucket", (("le", "0.0005"), ("log", "replica")))] == 1
    assert got[(name + "_bucket", (("le", "0.005"), ("log", "replica")))] == 2
    assert got[(name + "_sum", (("log", "quorum"),))] == pytest.approx(0.004)
    o.core.role = "follower"  # the quorum log is reported by the leader only
    await o.refresh()
    assert (name + "_count", (("log", "quorum"),)) not in samples(_exposition(o))


def test_ts_round_trip():
    assert ts_ms(iso_ms(T0_MS + 7)) == T0_MS + 7


def _exposition(o: NodeObserver) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    for c in o.collectors():
        registry.register(c)
    return generate_latest(registry).decode()


# --- the leader's view on /v1/nodes/{id} (issue 12 §1) --------------------------------------------------


async def test_issue12_s1_node_detail_carries_the_leaders_heartbeat_view(monkeypatch):
    import asyncio

    from roster.http import handlers

    asked: list[str] = []

    async def view(node: str) -> dict:
        asked.append(node)
        if node == "n03":
            await asyncio.sleep(5)  # a leader that does not answer
        return {"leader": "n01", "last_heartbeat_age_ms": 120, "as_of": "2027-01-15T08:00:00.000Z", "detail": None}

    monkeypatch.setattr(handlers, "LEADER_VIEW_TIMEOUT_S", 0.2)
    feed = ReplicaFeed.from_records("n01", HISTORY)
    app = create_app(feed, admin=refuse_admin, health=static_health(feed), token=TOKEN, leader_view=view)
    async with client_for(app) as client:
        resp = await client.get("/v1/nodes/n02")
        doc = await resp.json()
        assert doc["leader_view"]["last_heartbeat_age_ms"] == 120 and doc["leader_view"]["leader"] == "n01"
        assert "ETag" not in resp.headers and resp.headers["Cache-Control"] == "no-store"  # live: never a 304
        assert resp.headers["X-Roster-Seq"] == str(feed.seq)
        slow = await (await client.get("/v1/nodes/n03")).json()
        assert slow["leader_view"]["last_heartbeat_age_ms"] is None and "did not answer" in slow["leader_view"]["detail"]
        past = await client.get("/v1/nodes/n02", params={"at": str(feed.seq - 1)})
        assert (await past.json())["leader_view"] is None and "ETag" in past.headers  # the log has no heartbeats
    assert asked == ["n02", "n03"]
    plain = create_app(feed, admin=refuse_admin, health=static_health(feed), token=TOKEN)
    async with client_for(plain) as client:
        doc = await (await client.get("/v1/nodes/n02")).json()
    assert doc["leader_view"]["last_heartbeat_age_ms"] is None and doc["leader_view"]["detail"]


def test_issue12_s6_a_metrics_fault_never_stops_the_node(caplog):
    """The observer runs inside the node actor's step: a fault there is logged, not raised."""
    o = NodeObserver("n1")
    o.core = leader_core()
    bad = Record(seq=1, epoch=1, ts="not-a-time", node="n2", by="n1", event=t.NodeDown(reason="regroup"), hash="0")
    o.on_committed([bad], T0_MS, leading=True)
    o.after_step(m.Heartbeat(node="n2", epoch=1, applied_seq=1, sent_at=T0_MS), T0_MS, object())  # no .role
    assert "observing committed records failed" in caplog.text and "observing Heartbeat failed" in caplog.text
