"""Issue 10 end to end on real multi-node Ray (`ray.cluster_utils.Cluster`: a head and three
workers, one Roster node each): a group with a real `process` resource (an HTTP service) and a
`ray_actor` resource that depends on it, declared by `group-apply`; reachable at one address
(`/svc/web/` on every node); a killed process restarted in place (RestartThreshold); the owner's
server removed → the group fails over and the old copy is gone first (invariant 4); a planned
leave stops the resources before the ClusterExit. Marked `ray` and `slow`."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from roster.cli_up import start_cluster, wait_all_online  # noqa: E402
from tests.ray_helpers import (FAST_HEALTH, admin, quorum_records, roster_config, status,  # noqa: E402
                               types_after, wait_for, worker_args)

REPO = Path(__file__).resolve().parents[1]
MEMBERS = ["n1", "n2", "n3"]
HTTP_TIMEOUT_S = 5
DEATH_POLL_S = 0.01


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    os.environ["RAY_AUTH_MODE"] = "disabled"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": FAST_HEALTH})
    workers = {n: c.add_node(**worker_args(n)) for n in MEMBERS}
    # examples/ (the counter actor) is not an installed package: Ray workers import it from the checkout
    ray.init(address=c.address, namespace="roster", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}"}})
    data_dir = tmp_path_factory.mktemp("roster-res")
    sup, desc = start_cluster(roster_config(data_dir, MEMBERS, http_port=free_port()))
    wait_all_online(MEMBERS, timeout_s=90)
    urls = {n: status(n)["http"] for n in MEMBERS}  # where each node's HTTP server listens
    yield {"cluster": c, "workers": workers, "urls": urls, "service_port": free_port(), "desc": desc}
    ray.shutdown()
    c.shutdown()


def declared(port: int) -> dict:
    app = {"name": "app", "type": "process", "stop_timeout_ms": 3000,
           "health": {"interval_ms": 300, "timeout_ms": 1000},
           "restart": {"threshold": 3, "period_ms": 900000, "delay_ms": 200},
           "params": {"argv": [sys.executable, str(REPO / "examples" / "whoami.py"), str(port)],
                      "port": port, "probe": "http"}}
    counter = {"name": "counter", "type": "ray_actor", "depends_on": ["app"],
               "health": {"interval_ms": 500, "timeout_ms": 2000},
               "params": {"cls": "examples.counter:Counter", "health_method": "ping", "kwargs": {"start": 0}}}
    return {"web": {"preferred_owners": ["n1", "n2", "n3"], "resources": [app, counter]}}


def svc(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/svc/web/hello", timeout=HTTP_TIMEOUT_S) as resp:
        return json.loads(resp.read())


def group(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/v1/groups/web", timeout=HTTP_TIMEOUT_S) as resp:
        return json.loads(resp.read())


def online_on(urls: dict, node: str | None = None):
    """The group's doc once both resources are Online (on `node`, if given) in every replica."""
    def check():
        docs = [group(u) for u in urls.values()]
        ok = all(all(r["state"] == "Online" for r in d["resources"]) and (node is None or d["owner"] == node)
                 for d in docs)
        return docs[0] if ok else None
    return check


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_issue10_apply_runs_the_service_reachable_from_every_node(cluster):
    urls, port = cluster["urls"], cluster["service_port"]
    reply = admin("n1", "group-apply", groups=declared(port), prune=False)
    assert reply.ok, reply
    g = wait_for(online_on(urls, "n1"), 60, "web Online on n1")
    assert g["endpoint"] == f"127.0.0.1:{port}"
    answers = [svc(u) for u in urls.values()]  # one address: any node forwards to wherever it runs
    assert {a["node"] for a in answers} == {"n1"} and len({a["pid"] for a in answers}) == 1
    assert all(a["path"] == "/hello" for a in answers)
    counter = ray.get_actor("web/counter", namespace="roster")
    assert ray.get(counter.ping.remote(), timeout=10) is not None
    cluster["pid"] = answers[0]["pid"]


def test_issue10_a_killed_process_is_restarted_in_place(cluster):
    urls, pid = cluster["urls"], cluster["pid"]
    seq0 = quorum_records()[-1].seq
    os.kill(pid, signal.SIGKILL)
    failed = wait_for(lambda: types_after(quorum_records(), seq0, "ResourceFailed"), 30, "ResourceFailed")
    assert failed[0].event.resource == "app" and failed[0].event.node == "n1" and not failed[0].event.restarts_exhausted
    wait_for(lambda: types_after(quorum_records(), seq0, "ResourceRestarted"), 30, "ResourceRestarted")
    wait_for(online_on(urls, "n1"), 30, "web Online again on n1")
    again = wait_for(lambda: svc(urls["n2"]), 10, "the service to answer")
    assert again["node"] == "n1" and again["pid"] != pid and not alive(pid)
    assert not types_after(quorum_records(), seq0, "GroupMoved")  # restarted in place, not failed over
    cluster["pid"] = again["pid"]


def test_issue10_invariant4_owner_removed_the_group_fails_over_and_the_old_copy_is_gone(cluster):
    urls, pid = cluster["urls"], cluster["pid"]
    seq0 = quorum_records()[-1].seq
    cluster["cluster"].remove_node(cluster["workers"].pop("n1"))  # the owner's whole server goes away
    others = {n: u for n, u in urls.items() if n != "n1"}
    moved = wait_for(lambda: types_after(quorum_records(), seq0, "GroupMoved"), 60, "web to move")
    target = moved[-1].event.to_node
    assert target in ("n2", "n3") and types_after(quorum_records(), seq0, "NodeDown", "n1")
    wait_for(online_on(others, target), 60, f"web Online on {target}")
    assert not alive(pid)  # the watchdog took the old service down with its dead holder
    answer = wait_for(lambda: svc(others[target]), 10, "the moved service to answer")
    assert answer["node"] == target
    counter = ray.get_actor("web/counter", namespace="roster")  # the singleton, found wherever it runs now
    assert ray.get(counter.ping.remote(), timeout=10) is not None
    cluster["owner"], cluster["pid"] = target, answer["pid"]


def died_at(pid: int, timeout_s: float) -> float:
    """When `pid` was first seen gone (wall clock, like the log's ts), polling every DEATH_POLL_S."""
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} still alive after {timeout_s} s"
        time.sleep(DEATH_POLL_S)
    return time.time()


def ts_s(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def test_issue10_a_planned_leave_stops_the_resources_before_they_start_elsewhere(cluster):
    """S21 + issue 13 §6: the leaving owner stops its resources first and only then tells the
    others, so the group is placed elsewhere only after the old process is gone; no regroup."""
    urls, owner, pid = cluster["urls"], cluster["owner"], cluster["pid"]
    seq0 = quorum_records()[-1].seq
    assert admin(owner, "leave").ok
    gone = died_at(pid, 30)
    rest = [n for n in urls if n not in ("n1", owner)]
    wait_for(online_on({rest[0]: urls[rest[0]]}, rest[0]), 60, f"web Online on {rest[0]}")
    placed = [r for r in types_after(quorum_records(), seq0, "GroupMoved") if r.event.to_node == rest[0]]
    assert placed and ts_s(placed[0].ts) >= gone - DEATH_POLL_S, (placed[0].ts, gone)
    assert types_after(quorum_records(), seq0, "NodeExited", owner)
    assert not types_after(quorum_records(), seq0, "Regrouped")  # a planned leave: no regroup (S21)
    assert status(rest[0])["state"] == "Online" and svc(urls[rest[0]])["node"] == rest[0]
