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
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from roster.cli_up import start_cluster, wait_all_online  # noqa: E402
from tests.ray_helpers import (FAST_HEALTH, admin, free_port, quorum_records, roster_config,  # noqa: E402
                               status, types_after, wait_for, worker_args)

REPO = Path(__file__).resolve().parents[1]
MEMBERS = ["n1", "n2", "n3"]
HTTP_TIMEOUT_S = 5
DEATH_POLL_S = 0.01
RESTART_THRESHOLD = 3  # declared() gives the app this restart.threshold
FAILED_STAYS_S = 2.0  # a Failed group still offline this long after
CALL_TIMEOUT_S = 2.0
CLIENT_PERIOD_S = 0.1


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


def svc_answer(url: str) -> dict | None:
    """The service's answer through `url`, or None while the group has no endpoint (503) or
    the node does not answer: what a client retrying on Retry-After sees."""
    try:
        return svc(url)
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            raise
        return None
    except (urllib.error.URLError, ConnectionError):
        return None


def group_or_none(url: str, name: str = "web") -> dict | None:
    """The group's doc, or None (404) while this replica has not yet applied the apply: a
    replica folds the committed event a moment after the quorum acknowledged it."""
    try:
        return group_doc(url, name)
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        return None


def online_on(urls: dict, node: str | None = None):
    """The group's doc once both resources are Online (on `node`, if given) in every replica."""
    def check():
        docs = [group_or_none(u) for u in urls.values()]
        ok = all(d is not None and all(r["state"] == "Online" for r in d["resources"])
                 and (node is None or d["owner"] == node) for d in docs)
        return docs[0] if ok else None
    return check


def group_doc(url: str, name: str) -> dict:
    with urllib.request.urlopen(f"{url}/v1/groups/{name}", timeout=HTTP_TIMEOUT_S) as resp:
        return json.loads(resp.read())


class ActorClient(threading.Thread):
    """A Ray client of the `web/counter` singleton, as a user's would be: it looks the actor up
    by name and calls it, retrying while it fails over; beside it, the number of live actors
    under that name, polled from Ray's state API."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.done = threading.Event()
        self.answers_before = self.answers_after_failover = 0
        self.failed_once = False
        self.most_alive = 0

    def run(self) -> None:
        from ray.util.state import list_actors

        while not self.done.is_set():
            try:
                ray.get(ray.get_actor("web/counter", namespace="roster").ping.remote(), timeout=CALL_TIMEOUT_S)
                if self.failed_once:
                    self.answers_after_failover += 1
                else:
                    self.answers_before += 1
            except Exception:  # noqa: BLE001 - gone, moving, not yet there: retry, as a client would
                self.failed_once = True
            alive_now = list_actors(filters=[("name", "=", "web/counter"), ("state", "=", "ALIVE")])
            self.most_alive = max(self.most_alive, len(alive_now))
            time.sleep(CLIENT_PERIOD_S)

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=30)


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
    again = wait_for(lambda: svc_answer(urls["n2"]), 10, "the service to answer")
    assert again["node"] == "n1" and again["pid"] != pid and not alive(pid)
    assert not types_after(quorum_records(), seq0, "GroupMoved")  # restarted in place, not failed over
    cluster["pid"] = again["pid"]


def test_issue10_restart_threshold_plus_one_kills_fail_the_group_over_to_the_next_owner(cluster):
    """restart_threshold (3) + 1 kills within the period: restarted in place three times, then
    the group fails over to the next preferred owner; the old process is gone first."""
    urls = cluster["urls"]
    seq0 = quorum_records()[-1].seq
    prior = len([r for r in types_after(quorum_records(), 0, "ResourceFailed") if r.event.resource == "app"])
    kills = RESTART_THRESHOLD + 1 - prior  # the earlier test's kill counts too: same placement, same period
    for kill in range(kills):
        pid = wait_for(lambda: svc_answer(urls["n3"]), 30, "the service to answer")["pid"]
        os.kill(pid, signal.SIGKILL)
        if kill < kills - 1:
            wait_for(lambda: (lambda a: a if a and a["pid"] != pid else None)(svc_answer(urls["n3"])), 30,
                     f"restart {kill + 1}")
    gone = died_at(pid, 10)
    moved = wait_for(lambda: [r for r in types_after(quorum_records(), seq0, "GroupMoved") if r.event.to_node], 60,
                     "web to fail over")
    failed = [r.event for r in types_after(quorum_records(), 0, "ResourceFailed") if r.event.resource == "app"]
    assert [f.restarts_exhausted for f in failed] == [False] * RESTART_THRESHOLD + [True], failed
    assert moved[0].event.to_node == "n2"  # the next preferred owner
    assert ts_s(moved[0].ts) >= gone - DEATH_POLL_S  # the old copy was gone before the new placement
    wait_for(online_on(urls, "n2"), 60, "web Online on n2")
    answer = svc(urls["n1"])
    assert answer["node"] == "n2"
    cluster["owner"], cluster["pid"] = "n2", answer["pid"]


def test_issue10_past_the_failover_threshold_a_group_is_failed_until_brought_online(cluster):
    """FailoverThreshold 0: one failover too many → Failed, offline, not placed again; group
    online (an admin) places it again."""
    urls = cluster["urls"]
    port = free_port()
    app = {"name": "app", "type": "process", "health": {"interval_ms": 300, "timeout_ms": 1000},
           "restart": {"threshold": 0, "period_ms": 900000, "delay_ms": 100},
           "params": {"argv": [sys.executable, str(REPO / "examples" / "whoami.py"), str(port)],
                      "port": port, "probe": "http"}}
    fragile = {"preferred_owners": ["n3"], "failover": {"threshold": 0, "period_ms": 3600000}, "resources": [app]}
    assert admin("n1", "group-apply", groups={**declared(cluster["service_port"]), "fragile": fragile}).ok
    doc = wait_for(lambda: (lambda d: d if d and d["state"] == "Online" and d["resources"][0]["state"] == "Online"
                            else None)(group_or_none(urls["n1"], "fragile")), 60, "fragile Online")
    pid = json.loads(urllib.request.urlopen(f"{urls['n1']}/svc/fragile/", timeout=HTTP_TIMEOUT_S).read())["pid"]
    assert doc["owner"] == "n3"
    seq0 = quorum_records()[-1].seq
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: group_doc(urls["n1"], "fragile")["state"] == "Failed", 30, "fragile Failed")
    time.sleep(FAILED_STAYS_S)
    assert group_doc(urls["n1"], "fragile")["state"] == "Failed"  # stays offline
    assert not [r for r in types_after(quorum_records(), seq0, "GroupMoved") if r.event.group == "fragile"]
    with pytest.raises(urllib.error.HTTPError) as unavailable:
        urllib.request.urlopen(f"{urls['n1']}/svc/fragile/", timeout=HTTP_TIMEOUT_S)
    assert unavailable.value.code == 503 and unavailable.value.headers["Retry-After"]
    assert admin("n1", "group-online", group="fragile").ok
    wait_for(lambda: group_doc(urls["n1"], "fragile")["state"] == "Online", 60, "fragile Online again")
    assert admin("n1", "group-delete", group="fragile").ok


def test_issue10_invariant4_owner_removed_the_group_fails_over_and_the_old_copy_is_gone(cluster):
    urls, pid = cluster["urls"], cluster["pid"]
    seq0 = quorum_records()[-1].seq
    owner = cluster["owner"]
    client = ActorClient()
    client.start()
    wait_for(lambda: client.answers_before, 30, "the counter to answer by name before the failover")
    cluster["cluster"].remove_node(cluster["workers"].pop(owner))  # the owner's whole server goes away
    others = {n: u for n, u in urls.items() if n != owner}
    moved = wait_for(lambda: types_after(quorum_records(), seq0, "GroupMoved"), 60, "web to move")
    target = moved[-1].event.to_node
    assert target != owner and types_after(quorum_records(), seq0, "NodeDown", owner)
    wait_for(online_on(others, target), 60, f"web Online on {target}")
    assert not alive(pid)  # the watchdog took the old service down with its dead holder
    answer = wait_for(lambda: svc_answer(others[target]), 10, "the moved service to answer")
    assert answer["node"] == target
    wait_for(lambda: client.answers_after_failover, 60, "the counter to answer again by name")
    client.stop()
    assert client.most_alive <= 1, "two live actors named web/counter at once"  # never two copies
    assert client.answers_before and client.answers_after_failover
    cluster["gone"], cluster["owner"], cluster["pid"] = owner, target, answer["pid"]


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
    rest = [n for n in urls if n not in (cluster["gone"], owner)]
    wait_for(online_on({rest[0]: urls[rest[0]]}, rest[0]), 60, f"web Online on {rest[0]}")
    placed = [r for r in types_after(quorum_records(), seq0, "GroupMoved") if r.event.to_node == rest[0]]
    assert placed and ts_s(placed[0].ts) >= gone - DEATH_POLL_S, (placed[0].ts, gone)
    assert types_after(quorum_records(), seq0, "NodeExited", owner)
    assert not types_after(quorum_records(), seq0, "Regrouped")  # a planned leave: no regroup (S21)
    assert status(rest[0])["state"] == "Online" and svc(urls[rest[0]])["node"] == rest[0]
