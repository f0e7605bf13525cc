"""Read routes through aiohttp's test client, over real event sequences (a simulated run's
quorum log, and a generated history with groups, pauses and evictions)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from events import codec
from events.log import EventLog
from projections import replay
from projections.state import ClusterState, fold
from roster.cli import main
from roster.history_gen import make_history
from roster.http.app import create_app
from roster.http.feed import ReplicaFeed
from roster.http.handlers import CTX
from tests.http_support import TOKEN, client_for, refuse_admin, sim_records, static_health

HISTORY_EVENTS = 600


@pytest.fixture(scope="module")
def history():
    return make_history(HISTORY_EVENTS, seed=5, n_nodes=6)


def make_app(records, role: str = "follower", lag: int = 0, node: str = "n01"):
    feed = ReplicaFeed.from_records(node, records)
    return create_app(feed, admin=refuse_admin, health=static_health(feed, role, lag), token=TOKEN)


def write_log(path: Path, records) -> Path:
    with EventLog.open(path, fsync=False) as log:
        log.append_records(list(records))
    return path


def cli_json(capsys, *argv) -> dict:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return codec.loads(out)


# --- membership and time travel ------------------------------------------------------------------


async def test_membership_reflects_the_replica_head(history):
    app = make_app(history)
    async with client_for(app) as client:
        resp = await client.get("/v1/membership")
        assert resp.status == 200
        doc = await resp.json()
    state = fold(ClusterState(), history)
    assert doc["seq"] == state.seq == HISTORY_EVENTS and doc["hash"] == state.hash
    assert resp.headers["X-Roster-Seq"] == str(state.seq)
    assert resp.headers["ETag"].startswith(f'"{state.seq}-')
    assert doc["cluster"] == state.config.name and doc["cluster_id"] == state.config.cluster_id
    assert doc["epoch"] == state.membership.epoch and doc["leader"] == state.membership.leader
    view = state.membership.to_dict()
    assert [{k: n[k] for k in view["nodes"][0]} for n in doc["nodes"]] == view["nodes"]
    assert [{k: g[k] for k in (view["groups"] or [{}])[0]} for g in doc["groups"]] == view["groups"]
    for n in doc["nodes"]:
        assert n["member"] == state.config.is_member(n["id"])
        assert n["leader"] == (n["id"] == state.membership.leader)


def test_the_generated_history_covers_what_the_views_show(history):
    types = {r.event.type for r in history}
    assert {"GroupCreated", "GroupMoved", "NodePaused", "NodeEvicted", "HeartbeatMissed", "Regrouped"} <= types


@pytest.mark.parametrize("source", ["sim", "history"])
async def test_at_seq_equals_offline_replay(source, history, tmp_path, capsys):
    records = list(sim_records()) if source == "sim" else history
    logdir = write_log(tmp_path / "log", records)
    app = make_app(records, node="n1")
    seqs = sorted({1, 9, len(records) // 3, len(records) // 2, len(records) - 1, len(records)})
    async with client_for(app) as client:
        for seq in seqs:
            resp = await client.get("/v1/membership", params={"at": str(seq)})
            assert resp.status == 200, await resp.text()
            doc = await resp.json()
            want = cli_json(capsys, "replay", logdir, "--to", seq, "--json")
            assert doc["seq"] == seq == want["seq"] and doc["hash"] == want["hash"]
            base = want["membership"]
            assert doc["epoch"] == base["epoch"] and doc["leader"] == base["leader"]
            assert [{k: n[k] for k in base["nodes"][0]} for n in doc["nodes"]] == base["nodes"]
            assert [g["name"] for g in doc["groups"]] == [g["name"] for g in base["groups"]]
            assert [g["owner"] for g in doc["groups"]] == [g["owner"] for g in base["groups"]]
            cfg = await (await client.get("/v1/config", params={"at": str(seq)})).json()
            assert cfg["secret_fingerprint"] == want["config"]["secret_fingerprint"]
            assert [m["id"] for m in cfg["members"]] == [m["id"] for m in want["config"]["members"]]


async def test_at_time_equals_offline_replay(history, tmp_path, capsys):
    logdir = write_log(tmp_path / "log", history)
    app = make_app(history)
    picks = [history[0].ts, history[123].ts, history[-1].ts, "2023-06-01T00:00:00Z", "2099-01-01T00:00:00+02:00"]
    async with client_for(app) as client:
        for ts in picks:
            doc = await (await client.get("/v1/membership", params={"at": ts})).json()
            want = cli_json(capsys, "replay", logdir, "--at", ts, "--json")
            assert doc["seq"] == want["seq"], ts
            assert doc["hash"] == want["hash"]


async def test_at_and_min_seq_input_errors(history):
    app = make_app(history)
    async with client_for(app) as client:
        for params, status in [({"at": str(HISTORY_EVENTS + 1)}, 404), ({"at": "yesterday"}, 422),
                               ({"at": "-3"}, 422), ({"at": "١٢"}, 422), ({"min_seq": "1_0"}, 422),
                               ({"min_seq": "x"}, 422), ({"timeout_ms": "99999"}, 422),
                               ({"timeout_ms": "-1"}, 422), ({"bogus": "1"}, 422),
                               ({"at": "99999999999999999999999"}, 422), ({"at": "0001-01-01T00:00:00+14:00"}, 422),
                               ({"at": "2023-01-01"}, 200)]:
            resp = await client.get("/v1/membership", params=params)
            assert resp.status == status, (params, await resp.text())
            if status != 200:
                doc = await resp.json()
                assert set(doc) == {"error", "detail", "seq"} and doc["detail"], params
        empty = await (await client.get("/v1/membership?at=0")).json()
        assert empty["seq"] == 0 and empty["nodes"] == []
        repeated = await client.get("/v1/membership?at=1&at=2")
        assert repeated.status == 422


async def test_time_travel_far_back_in_a_long_log_uses_checkpoints():
    records = make_history(3_500, seed=2, n_nodes=8)
    feed = ReplicaFeed.from_records("n01", records)
    assert len(feed._checkpoints) == 3
    for seq in (0, 999, 1000, 1001, 2500, 3499, 3500):
        want = fold(ClusterState(), records[:seq])
        assert feed.state_at(seq).digest() == want.digest()
        assert feed.hash_at(seq) == want.hash


# --- read your write -----------------------------------------------------------------------------


async def test_min_seq_waits_for_the_replica(history):
    app = make_app(history[:400])
    feed = app[CTX].feed
    async with client_for(app) as client:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, feed.append, history[400:450])
        loop.call_later(0.10, feed.append, history[450:])
        resp = await client.get("/v1/membership", params={"min_seq": "420", "timeout_ms": "3000"})
        assert resp.status == 200
        assert (await resp.json())["seq"] >= 420
        late = await client.get("/v1/membership", params={"min_seq": str(HISTORY_EVENTS + 5), "timeout_ms": "50"})
        assert late.status == 504
        doc = await late.json()
        assert doc["error"] == "replica_behind" and str(HISTORY_EVENTS) in doc["detail"]


# --- caching and conditional requests ------------------------------------------------------------


async def test_unchanged_seq_is_served_from_the_cache_and_304s(history):
    app = make_app(history[:300])
    ctx = app[CTX]
    async with client_for(app) as client:
        first = await client.get("/v1/membership")
        body = await first.read()
        builds = ctx.cache.builds
        for _ in range(5):
            again = await client.get("/v1/membership")
            assert await again.read() == body
        assert ctx.cache.builds == builds
        tag = first.headers["ETag"]
        assert (await client.get("/v1/membership", headers={"If-None-Match": tag})).status == 304
        assert (await client.get("/v1/membership", headers={"If-None-Match": f'W/{tag}, "x"'})).status == 304
        assert (await client.get("/v1/membership", headers={"If-None-Match": '"1-00"'})).status == 200
        ctx.feed.append(history[300:301])
        fresh = await client.get("/v1/membership", headers={"If-None-Match": tag})
        assert fresh.status == 200 and fresh.headers["ETag"] != tag
        assert (await fresh.json())["seq"] == 301


# --- config, nodes, timeline ---------------------------------------------------------------------


async def test_config_carries_no_secret():
    records = list(sim_records())
    app = make_app(records, node="n1")
    async with client_for(app) as client:
        raw = await (await client.get("/v1/config")).read()
        everything = raw
        for path in ("/v1/membership", "/v1/events?limit=1000", "/v1/nodes/n1", "/healthz", "/metrics"):
            everything += await (await client.get(path)).read()
    doc = codec.loads(raw)
    assert set(doc) == {"cluster", "cluster_id", "seq", "hash", "secret_fingerprint", "settings", "quorum",
                        "members", "evicted", "groups"}
    assert len(doc["secret_fingerprint"]) == 16
    assert b"cluster-secret" not in everything  # the simulated cluster's secret
    assert TOKEN.encode() not in everything


async def test_node_detail_and_unknown_nodes(history):
    app = make_app(history)
    state = fold(ClusterState(), history)
    async with client_for(app) as client:
        for node_id, view in state.membership.nodes.items():
            doc = await (await client.get(f"/v1/nodes/{node_id}")).json()
            assert doc["state"] == view.state and doc["since_seq"] == view.since_seq
            assert doc["groups"] == state.membership.groups_of(node_id)
            assert doc["evicted"] == (node_id in state.config.evicted)
        for bad in ("nope", "a%20b", "x" * 80):
            resp = await client.get(f"/v1/nodes/{bad}")
            assert resp.status == 404 and (await resp.json())["error"] == "unknown_node"


async def test_timeline_equals_offline_timeline(history, tmp_path, capsys):
    logdir = write_log(tmp_path / "log", history)
    app = make_app(history)
    async with client_for(app) as client:
        for node in ("n01", "n03", "n06"):
            doc = await (await client.get(f"/v1/nodes/{node}/timeline")).json()
            want = cli_json(capsys, "timeline", logdir, node, "--json")
            assert doc["entries"] == want["entries"] and doc["seq"] == HISTORY_EVENTS
        assert (await client.get("/v1/nodes/zz/timeline")).status == 404


# --- events --------------------------------------------------------------------------------------


async def test_events_pages_cover_the_log_exactly(history):
    app = make_app(history)
    async with client_for(app) as client:
        got, start = [], 1
        while True:
            doc = await (await client.get("/v1/events", params={"from": start, "limit": 97})).json()
            got += doc["events"]
            start = doc["next"]
            if not doc["more"]:
                break
        assert got == [codec.envelope(r) for r in history]
        assert start == HISTORY_EVENTS + 1
        paused = await (await client.get("/v1/events", params={"type": "NodePaused", "limit": 1000})).json()
        assert [e["seq"] for e in paused["events"]] == [r.seq for r in history if r.event.type == "NodePaused"]
        about = await (await client.get("/v1/events", params={"node": "n02", "limit": 1000})).json()
        assert [e["seq"] for e in about["events"]] == [r.seq for r in history if replay.names_node(r, "n02")]
        for params in ({"type": "Nope"}, {"limit": "0"}, {"limit": "1001"}, {"from": "a"}, {"node": "-x"}):
            assert (await client.get("/v1/events", params=params)).status == 422, params


# --- health, metrics, errors ---------------------------------------------------------------------


async def test_healthz_reports_role_state_and_lag():
    records = list(sim_records())
    async with client_for(make_app(records, "follower", lag=3, node="n2")) as client:
        resp = await client.get("/healthz")
        doc = await resp.json()
    assert resp.status == 200 and doc["ok"] is True
    expected_state = fold(ClusterState(), records).membership.nodes["n2"].state  # the workload may pause n2
    assert doc["replica_lag"] == 3 and doc["state"] == expected_state and doc["seq"] == len(records)
    async with client_for(make_app(records, "searching", node="n2")) as client:
        resp = await client.get("/healthz")
        doc = await resp.json()
    assert resp.status == 503 and doc["ok"] is False and "searching" in doc["detail"]


async def test_metrics_are_prometheus_text_of_the_replica(history):
    async with client_for(make_app(history, "leader")) as client:
        resp = await client.get("/metrics")
        text = await resp.text()
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    state = fold(ClusterState(), history)
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in text.splitlines() if line and not line.startswith("#")}
    assert values['roster_replica_seq{node="n01"}'] == HISTORY_EVENTS
    assert values['roster_events_appended_total{node="n01"}'] == HISTORY_EVENTS
    assert values['roster_heartbeat_misses_total{node="n01"}'] == sum(
        r.event.type == "HeartbeatMissed" for r in history)
    assert values['roster_regroups_total{node="n01"}'] == sum(r.event.type == "Regrouped" for r in history)
    assert values['roster_epoch{node="n01"}'] == state.membership.epoch
    assert values['roster_is_leader{node="n01"}'] == 1
    for st in ("Online", "Paused", "Offline"):
        assert values[f'roster_nodes{{state="{st}"}}'] == sum(n.state == st for n in state.membership.nodes.values())


async def test_unknown_routes_and_methods_are_json_errors(history):
    async with client_for(make_app(history)) as client:
        resp = await client.get("/v2/nothing")
        assert resp.status == 404 and (await resp.json())["error"] == "not_found"
        resp = await client.put("/v1/membership")
        assert resp.status == 405 and "GET" in resp.headers["Allow"]
        assert (await resp.json())["error"] == "method_not_allowed"
        assert resp.headers["X-Roster-Seq"] == str(HISTORY_EVENTS)


async def test_an_unexpected_failure_is_a_json_500_without_details(history):
    app = make_app(history)

    def broken():
        raise RuntimeError("secret internals")

    app[CTX].health = broken
    async with client_for(app) as client:
        resp = await client.get("/healthz")
        doc = await resp.json()
    assert resp.status == 500 and doc["error"] == "internal_error" and "secret" not in doc["detail"]
