"""One address (issue 10 §4): `/svc/<group>/<path>` forwards any method, body and headers
to the group's Online endpoint (a real service process here), 503 + Retry-After while the
group has none, 404 for an unknown group; `GET /v1/groups/{name}` shows its resources."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from events.resource_spec import ResourceSpec
from events import codec
from events import types as ev
from events.record import draft
from roster.http.app import create_app
from roster.http.feed import ReplicaFeed
from tests.http_support import client_for, refuse_admin, static_health

REPO = Path(__file__).resolve().parents[1]
TOKEN = "t" * 24


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "examples" / "whoami.py"), str(port)],
                            env={"ROSTER_NODE": "n2", "PATH": "/usr/bin:/bin"}, stdout=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.kill()
    proc.wait()


def feed_with(*events) -> ReplicaFeed:
    drafts = [draft(e, by="n1") for e in events]
    records = codec.seal_all(drafts, first_seq=1, epoch=1, ts="2024-01-01T00:00:00.000Z", prev_hash=codec.GENESIS_HASH)
    return ReplicaFeed.from_records("n1", records)


def web_group(port: int, online: bool = True) -> list:
    spec = ResourceSpec(name="app", type="process", params={"argv": ["x"], "port": port, "probe": "http"})
    out = [ev.GroupCreated(group="web", preferred_owners=("n2",)), ev.ResourceAdded(group="web", spec=spec),
           ev.GroupMoved(group="web", from_node=None, to_node="n2", reason="placed")]
    if online:
        out.append(ev.ResourceOnline(group="web", resource="app", node="n2", attempt=0, endpoint=f"127.0.0.1:{port}"))
    return out


def app_for(feed: ReplicaFeed):
    return create_app(feed, admin=refuse_admin, health=static_health(feed), token=TOKEN)


async def test_svc_forwards_method_path_query_body_and_headers(service):
    feed = feed_with(*web_group(service))
    async with client_for(app_for(feed)) as client:
        resp = await client.get("/svc/web/some/deep/path?q=1&r=two")
        doc = await resp.json()
        assert resp.status == 200 and doc["node"] == "n2" and doc["path"] == "/some/deep/path?q=1&r=two"
        assert resp.headers["X-Roster-Seq"] == str(feed.seq)
        body = b"x" * 300_000  # bigger than the admin body cap: the forward streams it
        resp = await client.post("/svc/web/upload", data=body, headers={"Content-Type": "application/octet-stream"})
        doc = await resp.json()
        assert (resp.status, doc["method"], doc["body_bytes"]) == (200, "POST", len(body))
        resp = await client.delete("/svc/web/")
        assert (await resp.json())["method"] == "DELETE"


async def test_svc_503_with_retry_after_while_the_group_is_moving(service):
    feed = feed_with(*web_group(service), ev.GroupMoved(group="web", from_node="n2", to_node="n3", reason="failover"))
    async with client_for(app_for(feed)) as client:
        resp = await client.get("/svc/web/")
        doc = await resp.json()
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        assert doc["error"] == "group_unavailable" and "web" in doc["detail"]


async def test_svc_503_when_the_endpoint_refuses_connections():
    feed = feed_with(*web_group(free_port()))  # Online in the log, but nothing listens there now
    async with client_for(app_for(feed)) as client:
        resp = await client.get("/svc/web/")
        assert resp.status == 503 and resp.headers["Retry-After"] and (await resp.json())["error"] == "group_unavailable"


async def test_svc_unknown_group_is_404_json():
    feed = feed_with(ev.GroupCreated(group="other"))
    async with client_for(app_for(feed)) as client:
        resp = await client.post("/svc/nope/x", data=b"{}")
        doc = await resp.json()
        assert resp.status == 404 and doc["error"] == "unknown_group"


async def test_group_doc_shows_resources_states_and_no_params(service):
    feed = feed_with(*web_group(service), ev.ResourceFailed(group="web", resource="app", node="n2", attempt=0,
                                                            phase="run", reason="exited", exit_code=3),
                     ev.ResourceRestarted(group="web", resource="app", node="n2", attempt=1))
    async with client_for(app_for(feed)) as client:
        resp = await client.get("/v1/groups/web")
        doc = await resp.json()
        assert resp.status == 200 and doc["owner"] == "n2" and doc["state"] == "Online"
        (app,) = doc["resources"]
        assert (app["name"], app["state"], app["restarts"], app["last_failure"]["exit_code"]) == ("app", "Starting", 1, 3)
        assert "params" not in app, "params (env, kwargs) may hold secrets"
        at = await (await client.get("/v1/groups/web?at=4")).json()
        assert at["resources"][0]["state"] == "Online" and at["endpoint"] == f"127.0.0.1:{service}"
        missing = await client.get("/v1/groups/ghost")
        assert missing.status == 404 and (await missing.json())["error"] == "unknown_group"
