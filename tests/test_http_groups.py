"""Issue 10 §5: the HTTP routes for groups and resources, against a live simulated cluster
(real cores answer through the AdminPort; the simulator's resource host runs the resources):
apply (idempotent, prune, validated before anything is appended), group online/offline,
resource restart, and the group detail they change."""

from __future__ import annotations

import pytest

from tests.http_support import AUTH, SimCluster, client_for

WEB = {"name": "app", "type": "process", "params": {"argv": ["python3", "-m", "http.server"], "port": 8080}}
API = {"name": "api", "type": "process", "params": {"argv": ["python3", "api.py"]}, "depends_on": ["app"]}
DECLARED = {"web": {"preferred_owners": ["n2", "n3"], "resources": [WEB, API]}}
SETTLE_RUN_MS = 2_000  # virtual time for a placement and the resources' starts to commit


@pytest.fixture
def cluster() -> SimCluster:
    return SimCluster()


async def _apply(client, doc: dict) -> tuple[int, dict]:
    resp = await client.post("/v1/apply", json=doc, headers=AUTH)
    return resp.status, await resp.json()


async def _group(client, cluster: SimCluster, name: str) -> dict:
    cluster.run(SETTLE_RUN_MS)
    resp = await client.get(f"/v1/groups/{name}")
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_issue10_apply_creates_a_group_whose_resources_start_in_dependency_order(cluster):
    async with client_for(cluster.app()) as client:
        status, doc = await _apply(client, {"groups": DECLARED})
        assert status == 200 and doc["ok"] and doc["op"] == "group-apply" and doc["groups"] == ["web"], doc
        g = await _group(client, cluster, "web")
        assert g["owner"] == "n2" and g["state"] == "Online"
        assert [(r["name"], r["state"], r["owner"]) for r in g["resources"]] == [("app", "Online", "n2"),
                                                                                ("api", "Online", "n2")]
        assert g["endpoint"] is not None and g["endpoint"].endswith(":8080")
        assert "argv" not in str(g)  # params (argv, env) are not echoed: they may hold secrets
        online = [r for r in cluster.world.qdisk.records if r.event.type == "ResourceOnline"]
        assert [r.event.resource for r in online] == ["app", "api"]  # dependency first


async def test_issue10_apply_is_idempotent_and_prune_removes_what_is_not_declared(cluster):
    async with client_for(cluster.app()) as client:
        assert (await _apply(client, {"groups": DECLARED}))[0] == 200
        assert (await client.post("/v1/groups", json={"name": "extra"}, headers=AUTH)).status == 200
        cluster.run(SETTLE_RUN_MS)
        head = len(cluster.world.qdisk.records)
        status, doc = await _apply(client, {"groups": DECLARED})  # the same again, no prune
        assert status == 200 and len(cluster.world.qdisk.records) == head  # appended nothing
        status, doc = await _apply(client, {"groups": DECLARED, "prune": True})
        assert status == 200 and doc["prune"] is True
        assert [r.event.group for r in cluster.world.qdisk.records[head:] if r.event.type == "GroupDeleted"] == ["extra"]
        assert (await client.get("/v1/groups/extra")).status == 404


@pytest.mark.parametrize("body, word", [
    ({"groups": []}, "'groups' must be an object"),
    ({"groups": {}, "prune": "yes"}, "'prune'"),
    ({"groups": {}, "extra": 1}, "unknown field"),
    ({"groups": {"web": {"resources": [{"name": "a", "type": "no-such-type"}]}}}, "no-such-type"),
    ({"groups": {"web": {"resources": [{**API, "depends_on": ["missing"]}]}}}, "missing"),
    ({"groups": {"web": {"preferred_owners": ["n99"]}}}, "n99"),
])
async def test_issue10_a_bad_declaration_is_a_422_and_appends_nothing(cluster, body, word):
    async with client_for(cluster.app()) as client:
        head = len(cluster.world.qdisk.records)
        status, doc = await _apply(client, body)
        assert status == 422, doc
        assert word in doc["detail"] and "\n" not in doc["detail"] and "Traceback" not in doc["detail"]
        cluster.run(SETTLE_RUN_MS)
        assert not [r for r in cluster.world.qdisk.records[head:] if r.event.type.startswith(("Group", "Resource"))]


async def test_issue10_offline_stops_the_group_and_online_places_it_again(cluster):
    async with client_for(cluster.app()) as client:
        await _apply(client, {"groups": DECLARED})
        assert (await _group(client, cluster, "web"))["state"] == "Online"
        resp = await client.post("/v1/groups/web/offline", headers=AUTH)
        assert resp.status == 200, await resp.text()
        g = await _group(client, cluster, "web")
        assert g["owner"] is None and g["state"] == "Offline"
        assert all(r["state"] == "Offline" for r in g["resources"])
        again = await client.post("/v1/groups/web/offline", headers=AUTH)
        assert again.status == 409 and (await again.json())["error"] == "wrong_state"
        resp = await client.post("/v1/groups/web/online", headers=AUTH)
        assert resp.status == 200, await resp.text()
        g = await _group(client, cluster, "web")
        assert g["state"] == "Online" and g["owner"] == "n2"


async def test_issue10_resource_restart_restarts_it_in_place(cluster):
    async with client_for(cluster.app()) as client:
        await _apply(client, {"groups": DECLARED})
        before = (await _group(client, cluster, "web"))["resources"][1]
        resp = await client.post("/v1/groups/web/resources/api/restart", headers=AUTH)
        assert resp.status == 200, await resp.text()
        after = (await _group(client, cluster, "web"))["resources"][1]
        assert after["state"] == "Online" and after["owner"] == before["owner"] and after["attempt"] == before["attempt"] + 1
        restarted = [r.event for r in cluster.world.qdisk.records if r.event.type == "ResourceRestarted"]
        assert [(e.resource, e.attempt) for e in restarted] == [("api", after["attempt"])]


async def test_issue10_restarting_a_resource_others_depend_on_stops_them_first_then_starts_all_again(cluster):
    """`roster resource restart web app` where `api` depends on `app` (examples/web.toml's shape):
    api stops, then app; app starts again (attempt + 1), then api. (It once did nothing: app
    waited for api to stop, api for app to stop.)"""
    async with client_for(cluster.app()) as client:
        await _apply(client, {"groups": DECLARED})
        before = await _group(client, cluster, "web")
        head = len(cluster.world.qdisk.records)
        resp = await client.post("/v1/groups/web/resources/app/restart", headers=AUTH)
        assert resp.status == 200, await resp.text()
        after = await _group(client, cluster, "web")
        assert [(r["name"], r["state"]) for r in after["resources"]] == [("app", "Online"), ("api", "Online")]
        assert after["resources"][0]["attempt"] == before["resources"][0]["attempt"] + 1
        steps = [(r.event.type, r.event.resource) for r in cluster.world.qdisk.records[head:]
                 if r.event.type in ("ResourceOffline", "ResourceRestarted", "ResourceOnline")]
        assert steps == [("ResourceOffline", "api"), ("ResourceOffline", "app"), ("ResourceRestarted", "app"),
                         ("ResourceOnline", "app"), ("ResourceOnline", "api")], steps


@pytest.mark.parametrize("path, status, error", [
    ("/v1/groups/nope/online", 404, "unknown_group"),
    ("/v1/groups/nope/offline", 404, "unknown_group"),
    ("/v1/groups/web/resources/nope/restart", 404, "unknown_resource"),
    ("/v1/groups/web/online", 409, "wrong_state"),  # neither Failed nor taken offline
])
async def test_issue10_group_commands_name_what_is_wrong(cluster, path, status, error):
    async with client_for(cluster.app()) as client:
        await _apply(client, {"groups": DECLARED})
        resp = await client.post(path, headers=AUTH)
        assert resp.status == status and (await resp.json())["error"] == error


async def test_issue10_membership_shows_each_groups_resources_now_and_at_any_seq(cluster):
    """What the dashboard's group rows and its scrubber read: state, owner, restarts and the
    last failure of each resource, in the view now and at a past seq."""
    async with client_for(cluster.app()) as client:
        assert (await _apply(client, {"groups": DECLARED}))[0] == 200
        cluster.run(SETTLE_RUN_MS)
        assert cluster.world.resources.kill("web", "app")
        cluster.run(SETTLE_RUN_MS)
        now = await (await client.get("/v1/membership")).json()
        (web,) = [g for g in now["groups"] if g["name"] == "web"]
        app = web["resources"][0]
        assert [r["name"] for r in web["resources"]] == ["app", "api"]
        assert (app["state"], app["owner"], app["restarts"], app["attempt"]) == ("Online", "n2", 1, 1)
        failure = app["last_failure"]
        assert (failure["phase"], failure["reason"], failure["exit_code"], failure["node"]) == ("run", "killed", -9, "n2")
        assert "argv" not in str(now)
        failed_at = next(r.seq for r in cluster.world.qdisk.records if r.event.type == "ResourceFailed")
        then = await (await client.get("/v1/membership", params={"at": str(failed_at)})).json()
        (web_then,) = [g for g in then["groups"] if g["name"] == "web"]
        assert web_then["resources"][0]["state"] == "Failed" and web_then["resources"][0]["restarts"] == 0
