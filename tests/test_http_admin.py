"""Admin routes against a live simulated cluster (real cores answer through the AdminPort):
auth on every route, status mapping, read-your-write with ?min_seq, input validation."""

from __future__ import annotations

import asyncio

import pytest

from actors import messages as m
from roster.http import admin_routes
from roster.http.app import create_app
from roster.http.feed import ReplicaFeed
from tests.http_support import AUTH, TOKEN, SimCluster, client_for, refuse_admin, sim_records, static_health

# Every admin route with a body it accepts (the cluster may still refuse it: 404, 409).
ADMIN_ROUTES = [
    ("POST", "/v1/nodes/n2/pause", None),
    ("POST", "/v1/nodes/n2/pause?drain=true", None),
    ("POST", "/v1/nodes/n2/resume", None),
    ("POST", "/v1/nodes/n5/evict", None),
    ("POST", "/v1/nodes/n4/leave", None),
    ("POST", "/v1/nodes", {"id": "n9"}),
    ("POST", "/v1/groups", {"name": "ga", "preferred_owners": ["n2"], "failback": True}),
    ("POST", "/v1/groups/ga/move", {"node": "n3"}),
    ("DELETE", "/v1/groups/ga", None),
]


@pytest.fixture
def cluster() -> SimCluster:
    return SimCluster()


async def test_every_admin_route_needs_the_right_bearer_token(cluster, caplog):
    async with client_for(cluster.app()) as client:
        for method, path, body in ADMIN_ROUTES:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                            {"Authorization": "Bearer"}, {"Authorization": f"Bearer {TOKEN}x"}):
                resp = await client.request(method, path, json=body, headers=headers)
                assert resp.status == 401, (method, path, headers)
                doc = await resp.json()
                assert doc["error"] == "unauthorized" and "wrong" not in doc["detail"] and TOKEN not in doc["detail"]
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert cluster.requests == 0  # nothing reached the leader
        for method, path, body in ADMIN_ROUTES:
            resp = await client.request(method, path, json=body, headers=AUTH)
            assert resp.status != 401, (method, path)
            assert resp.status in (200, 404, 409), (method, path, await resp.text())
    assert TOKEN not in caplog.text


async def test_pause_then_read_your_write_on_a_lagging_replica():
    cluster = SimCluster(feed_delay_s=0.1)  # the feed hears the commit 100 ms after the answer
    async with client_for(cluster.app()) as client:
        resp = await client.post("/v1/nodes/n2/pause", headers=AUTH)
        assert resp.status == 200, await resp.text()
        doc = await resp.json()
        assert doc["ok"] and doc["op"] == "pause" and doc["node"] == "n2" and doc["seq"] > doc["replica_seq"]
        seq = doc["seq"]
        view = await (await client.get("/v1/membership", params={"min_seq": seq, "timeout_ms": 5000})).json()
        assert view["seq"] >= seq
        assert {n["id"]: n["state"] for n in view["nodes"]}["n2"] == "Paused"
        again = await client.post("/v1/nodes/n2/pause", headers=AUTH)
        assert again.status == 409 and (await again.json())["error"] == "wrong_state"
        resp = await client.post("/v1/nodes/n2/resume", headers=AUTH)
        node = await (await client.get("/v1/nodes/n2", params={"min_seq": (await resp.json())["seq"]})).json()
        assert node["state"] == "Online"


async def test_groups_create_move_delete(cluster):
    async with client_for(cluster.app()) as client:
        created = await client.post("/v1/groups", json={"name": "web", "preferred_owners": ["n3", "n4"]},
                                    headers=AUTH)
        assert created.status == 200, await created.text()
        cluster.run(500)  # placement follows the creation
        group = {g["name"]: g for g in (await (await client.get("/v1/membership")).json())["groups"]}["web"]
        assert group["owner"] == "n3" and group["preferred_owners"] == ["n3", "n4"]
        assert (await client.post("/v1/groups/web/move", json={"node": "n3"}, headers=AUTH)).status == 409
        moved = await client.post("/v1/groups/web/move", json={"node": "n5"}, headers=AUTH)
        assert moved.status == 200, await moved.text()
        cluster.run(1000)  # the old owner stops it, then the leader places it on n5
        view = await (await client.get("/v1/membership")).json()
        assert {g["name"]: g["owner"] for g in view["groups"]}["web"] == "n5"
        assert "web" in {n["id"]: n["groups"] for n in view["nodes"]}["n5"]
        assert (await client.post("/v1/groups/nope/move", json={"node": "n5"}, headers=AUTH)).status == 404
        assert (await client.post("/v1/groups", json={"name": "web"}, headers=AUTH)).status == 409
        deleted = await client.delete("/v1/groups/web", headers=AUTH)
        seq = (await deleted.json())["seq"]
        cfg = await (await client.get("/v1/config", params={"min_seq": seq})).json()
        assert cfg["groups"] == []
        assert (await client.delete("/v1/groups/web", headers=AUTH)).status == 404


async def test_evict_then_add_node_again(cluster):
    async with client_for(cluster.app()) as client:
        assert (await client.post("/v1/nodes/n1/evict", headers=AUTH)).status == 409  # the leader itself
        evicted = await client.post("/v1/nodes/n3/evict", headers=AUTH)
        assert evicted.status == 200, await evicted.text()
        node = await (await client.get("/v1/nodes/n3", params={"min_seq": (await evicted.json())["seq"]})).json()
        assert node["evicted"] is True and node["member"] is False
        assert (await client.post("/v1/nodes/n3/pause", headers=AUTH)).status == 404  # no longer a member
        added = await client.post("/v1/nodes", json={"id": "n3", "address": "127.0.0.1:7403"}, headers=AUTH)
        assert added.status == 200, await added.text()
        cfg = await (await client.get("/v1/config", params={"min_seq": (await added.json())["seq"]})).json()
        assert {m["id"]: m["address"] for m in cfg["members"]}["n3"] == "127.0.0.1:7403"
        assert (await client.post("/v1/nodes", json={"id": "n3"}, headers=AUTH)).status == 409
        assert (await client.post("/v1/nodes/ghost/resume", headers=AUTH)).status == 404


async def test_leave_is_recorded(cluster):
    async with client_for(cluster.app()) as client:
        resp = await client.post("/v1/nodes/n4/leave", headers=AUTH)
        assert resp.status == 200, await resp.text()
        cluster.run(500)
        events = await (await client.get("/v1/events", params={"type": "NodeExited", "node": "n4"})).json()
        assert [e["node"] for e in events["events"]] == ["n4"]


BAD_BODIES = [
    ("/v1/nodes", b"not json"), ("/v1/nodes", b"[1]"), ("/v1/nodes", b""), ("/v1/nodes", b'{"id": 3}'),
    ("/v1/nodes", b'{"id": "a b"}'), ("/v1/nodes", b'{"id": "n7", "extra": 1}'), ("/v1/nodes", b'{}'),
    ("/v1/nodes", b'{"id": "n7", "address": 5}'), ("/v1/groups", b'{"name": "g", "failback": "yes"}'),
    ("/v1/groups", b'{"name": "g", "preferred_owners": "n1"}'), ("/v1/groups", b'{"name": "g", "preferred_owners": [1]}'),
    ("/v1/groups/g/move", b'{"node": null}'), ("/v1/groups/g/move", b'{"to": "n1"}'), ("/v1/nodes", b"\xff\xfe"),
]


async def test_malformed_input_is_422_and_never_reaches_the_leader(cluster):
    async with client_for(cluster.app()) as client:
        for path, body in BAD_BODIES:
            resp = await client.post(path, data=body, headers=AUTH)
            assert resp.status == 422, (path, body, await resp.text())
            doc = await resp.json()
            assert doc["error"] == "invalid_argument" and doc["detail"]
        for path in ("/v1/nodes/n2/pause?drain=maybe", "/v1/nodes/n2/resume?x=1"):
            assert (await client.post(path, headers=AUTH)).status == 422, path
        huge = await client.post("/v1/nodes", data=b'{"id": "' + b"x" * 200_000 + b'"}', headers=AUTH)
        assert huge.status == 413 and (await huge.json())["error"] == "payload_too_large"
    assert cluster.requests == 0


async def test_no_leader_and_broken_ports_are_503():
    feed = ReplicaFeed.from_records("n1", sim_records())

    async def hang(op, args):
        await asyncio.sleep(60)

    async def crash(op, args):
        raise ConnectionError("actor died")

    async def odd(op, args):
        return m.AdminReply(request_id="x", ok=False, status=200, error=None, detail=None)

    for port, status, error in ((refuse_admin, 503, "no_leader"), (hang, 503, "no_answer"),
                                (crash, 503, "no_leader"), (odd, 502, "rejected")):
        app = create_app(feed, admin=port, health=static_health(feed), token=TOKEN)
        async with client_for(app) as client:
            original = admin_routes.ADMIN_TIMEOUT_S
            admin_routes.ADMIN_TIMEOUT_S = 0.05
            try:
                resp = await client.post("/v1/nodes/n2/pause", headers=AUTH)
            finally:
                admin_routes.ADMIN_TIMEOUT_S = original
            assert resp.status == status
            assert (await resp.json())["error"] == error


async def test_an_empty_token_disables_admin_commands():
    feed = ReplicaFeed.from_records("n1", sim_records())
    app = create_app(feed, admin=refuse_admin, health=static_health(feed), token="")
    async with client_for(app) as client:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
            resp = await client.post("/v1/nodes/n2/pause", headers=headers)
            assert resp.status == 401
        assert "disabled" in (await resp.json())["detail"]
        assert (await client.get("/v1/membership")).status == 200
