"""Issue 10's service-level benchmarks on real multi-node Ray. Not a test.

    .venv/bin/python bench/bench_failover.py [--part restart,owner,ray-actor] [--timings default,fast]
                                             [--trials 20] [--ray-trials 10]

A head and three workers (`ray.cluster_utils.Cluster`, one Roster node per worker), a group
`web` with one `process` resource (examples/whoami.py on a port), clients through `/svc/web/`
on a node that does not run it (one address: the client never learns where it runs):

1. restart: kill -9 the service process -> `/svc/web/` answers from a new pid (restart in
   place). Bound: the resource's restart delay + one health interval (the delay the policy
   waits, then one probe of the new copy).
2. owner: the owner's whole host dies (SIGKILL its raylet and every process under it, then
   `remove_node`: what a host crash does) -> `/svc/web/` answers from another node. Bound:
   Roster's configured detection bound (interval x misses + regroup timeout). The worker is
   added back after each trial and rejoins.
3. ray-actor: Ray's own answer beside Roster's, in the same run, at Ray's and Roster's default
   settings: a plain detached actor with `max_restarts=-1` (soft affinity to the victim node,
   so Ray may restart it elsewhere) and Roster's `ray_actor` singleton, both on the same
   worker; that host dies; each client looks its actor up by name and calls it until a call
   succeeds again. Ray's state API is polled throughout for two live copies of either name.

Timings: "default" = 1000 ms x 5 misses (bound 6,000 ms), "fast" = 100 ms x 5 (bound 600 ms).
Ray's health checks are at Ray's defaults unless --fast-ray-health. Every wait is bounded;
every run shuts down the Ray it started. Results go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from actors.settings import ProtocolSettings  # noqa: E402
from bench_ray import _descendants, load_avg, log, pct  # noqa: E402
from roster.cli_up import start_cluster, wait_all_online  # noqa: E402
from tests.ray_helpers import (FAST_HEALTH, admin, free_port, leader_of, quorum_records,  # noqa: E402
                               roster_config, status, wait_for, worker_args)

MEMBERS = ["n1", "n2", "n3"]
TIMINGS = {"default": {"heartbeat_interval_ms": 1000, "heartbeat_misses_before_regroup": 5},
           "fast": {"heartbeat_interval_ms": 100, "heartbeat_misses_before_regroup": 5}}
POLL_S = 0.02
HTTP_TIMEOUT_S = 1.0
SERVE_TIMEOUT_S = 60.0
MOVE_ATTEMPTS = 3
REJOIN_TIMEOUT_S = 120.0
CALL_TIMEOUT_S = 1.0
TARGET_RATIO_P99 = 1.5
RAY_TARGET_SPEEDUP = 2.0
PLAIN_ACTOR = "plain/counter"  # the plain Ray actor's name (namespace roster, beside Roster's web/counter)


def app_spec(port: int, interval_ms: int) -> dict[str, Any]:
    return {"name": "app", "type": "process", "stop_timeout_ms": 3000,
            "health": {"interval_ms": interval_ms, "timeout_ms": max(interval_ms, 500)},
            "restart": {"threshold": 1000, "period_ms": 900000, "delay_ms": interval_ms},
            "params": {"argv": [sys.executable, str(REPO / "examples" / "whoami.py"), str(port)],
                       "port": port, "probe": "http"}}


def svc(url: str) -> dict | None:
    """What a client of `/svc/web/` gets: the service's answer, or None (503 while it moves,
    a refused connection, a timeout)."""
    try:
        with urllib.request.urlopen(f"{url}/svc/web/", timeout=HTTP_TIMEOUT_S) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def serving_again(url: str, ok: Any, t0: float) -> float:
    """Seconds from t0 until `ok(answer)` holds for an answer through `url`."""
    deadline = t0 + SERVE_TIMEOUT_S
    while time.monotonic() < deadline:
        a = svc(url)
        if a is not None and ok(a):
            return time.monotonic() - t0
        time.sleep(POLL_S)
    raise TimeoutError(f"/svc/web/ through {url} did not answer within {SERVE_TIMEOUT_S:g} s")


class Bench:
    """One Ray cluster (head + 3 workers) with Roster on it, at one timing."""

    def __init__(self, timing: str, fast_ray_health: bool) -> None:
        self.timing, self.settings = timing, TIMINGS[timing]
        self.bound_ms = ProtocolSettings(**self.settings).failover_bound_ms
        head = {"num_cpus": 1, "_system_config": FAST_HEALTH} if fast_ray_health else {"num_cpus": 1}
        self.cluster = Cluster(initialize_head=True, head_node_args=head)
        self.workers = {n: self.cluster.add_node(**worker_args(n)) for n in MEMBERS}
        ray.init(address=self.cluster.address, namespace="roster", log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}"}})
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-failover-"))
        start_cluster(roster_config(self.tmp / "data", MEMBERS, http_port=free_port(), settings=self.settings))
        wait_all_online(MEMBERS, timeout_s=120)
        self.urls = {n: status(n)["http"] for n in MEMBERS}
        self.port = free_port()  # the service's port, wherever it runs

    def close(self) -> None:
        ray.shutdown()
        self.cluster.shutdown()

    def leader(self) -> str:
        return wait_for(lambda: leader_of(MEMBERS), 60, "a leader")

    def apply(self, groups: dict[str, Any]) -> None:
        reply = admin(self.leader(), "group-apply", groups=groups, prune=False)
        assert reply.ok, reply

    def place_on_follower(self, i: int) -> tuple[str, str]:
        """Move `web` to a follower (in turn); returns (owner, a URL on another node)."""
        leader = self.leader()
        followers = [n for n in MEMBERS if n != leader]
        owner = followers[i % len(followers)]
        client = self.urls[next(n for n in MEMBERS if n != owner)]
        for attempt in range(MOVE_ATTEMPTS):
            reply = admin(self.leader(), "group-move", group="web", node=owner)
            if not reply.ok:
                log(f"group-move web to {owner} (attempt {attempt + 1}): {reply.status} {reply.error}: {reply.detail}")
            deadline = time.monotonic() + SERVE_TIMEOUT_S / MOVE_ATTEMPTS
            while time.monotonic() < deadline:
                if (svc(client) or {}).get("node") == owner:
                    return owner, client
                time.sleep(POLL_S)
        raise TimeoutError(f"web not served by {owner} after {MOVE_ATTEMPTS} moves")

    def crash_host(self, node_id: str) -> None:
        """SIGKILL the raylet first (so it cannot unregister itself), then every process under
        it (the Roster actors, the service and its watchdog), then remove it from the Cluster."""
        worker = self.workers.pop(node_id)
        raylet = worker.all_processes["raylet"][0].process.pid
        for pid in [raylet, *_descendants(raylet)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.cluster.remove_node(worker, allow_graceful=False)

    def add_back(self, node_id: str) -> float:
        t0 = time.monotonic()
        self.workers[node_id] = self.cluster.add_node(**worker_args(node_id))
        wait_for(lambda: (status(node_id) or {}).get("state") == "Online", REJOIN_TIMEOUT_S, f"{node_id} back")
        return time.monotonic() - t0


# --- 1. restart in place ------------------------------------------------------------------------------

def bench_restart(b: Bench, trials: int) -> dict[str, Any]:
    interval = b.settings["heartbeat_interval_ms"]
    bound_ms = 2 * interval  # restart delay (= interval) + one health interval
    owner, client = b.place_on_follower(0)
    rows = []
    for i in range(trials):
        before = wait_for(lambda: svc(client), SERVE_TIMEOUT_S, "web to answer")
        t0 = time.monotonic()
        os.kill(before["pid"], signal.SIGKILL)
        took = serving_again(client, lambda a, pid=before["pid"]: a["pid"] != pid, t0)
        rows.append({"trial": i + 1, "serving_ms": round(took * 1000), "node": owner})
        log(f"restart {b.timing} {i + 1}/{trials}: {took * 1000:.0f} ms")
    return {"rows": rows, "bound_ms": bound_ms}


# --- 2. the owner's host dies --------------------------------------------------------------------------

def bench_owner(b: Bench, trials: int) -> dict[str, Any]:
    rows = []
    for i in range(trials):
        owner, client = b.place_on_follower(i)
        time.sleep(0.5)
        head = quorum_records()[-1].seq
        t0 = time.monotonic()
        b.crash_host(owner)
        took = serving_again(client, lambda a, dead=owner: a["node"] != dead, t0)
        new_owner = (svc(client) or {}).get("node")
        rejoin = b.add_back(owner)
        time.sleep(2 * b.settings["heartbeat_interval_ms"] / 1000)  # what the rejoin logs next
        after = [r for r in quorum_records() if r.seq > head and r.node == owner]
        rows.append({"trial": i + 1, "victim": owner, "new_owner": new_owner, "serving_ms": round(took * 1000),
                     "rejoin_ms": round(rejoin * 1000),
                     "joins": sum(r.event.type == "NodeJoined" for r in after),
                     "misses_after_join": sum(r.event.type == "HeartbeatMissed" for r in after
                                              if r.seq > next((j.seq for j in after if j.event.type == "NodeJoined"), 1 << 62))})
        log(f"owner {b.timing} {i + 1}/{trials}: {json.dumps(rows[-1])}")
    return {"rows": rows, "bound_ms": b.bound_ms}


# --- 3. Ray's max_restarts=-1 actor beside Roster's ray_actor singleton -----------------------------------

class NameWatch(threading.Thread):
    """Polls Ray's state API: the most live actors seen at once under each name."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(daemon=True)
        self.names, self.most = names, dict.fromkeys(names, 0)
        self.done = threading.Event()

    def run(self) -> None:
        from ray.util.state import list_actors

        while not self.done.is_set():
            for name in self.names:
                try:
                    alive = list_actors(filters=[("name", "=", name), ("state", "=", "ALIVE")])
                except Exception:  # noqa: BLE001 - the state API may time out while a node dies
                    continue
                self.most[name] = max(self.most[name], len(alive))
            time.sleep(0.1)


def call_by_name(name: str) -> bool:
    try:
        return ray.get(ray.get_actor(name, namespace="roster").ping.remote(), timeout=CALL_TIMEOUT_S) is not None
    except Exception:  # noqa: BLE001 - gone, restarting, not yet there: a client retries
        return False


def answering_again(name: str, t0: float, out: dict[str, float], timeout_s: float) -> None:
    while time.monotonic() < t0 + timeout_s:
        if call_by_name(name):
            out[name] = time.monotonic() - t0
            return
        time.sleep(POLL_S)


def plain_actor_on(node_id: str) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from examples.counter import Counter

    ray_node = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and f"roster-node-{node_id}" in n["Resources"])
    cls = ray.remote(Counter).options(name=PLAIN_ACTOR, namespace="roster", lifetime="detached", max_restarts=-1,
                                      max_task_retries=-1, num_cpus=0.01,  # (an empty request ignores affinity)
                                      scheduling_strategy=NodeAffinitySchedulingStrategy(ray_node, soft=True))
    handle = cls.remote(start=0)
    where = ray.get(handle.where.remote(), timeout=30)
    assert where["ray_node"] == ray_node, f"the plain actor runs on {where['ray_node']}, not on {node_id}'s node"
    return handle


def bench_ray_actor(b: Bench, trials: int) -> dict[str, Any]:
    roster_name = "web/counter"
    watch = NameWatch([PLAIN_ACTOR, roster_name])
    watch.start()
    rows = []
    try:
        for i in range(trials):
            owner, _ = b.place_on_follower(i)
            wait_for(lambda: call_by_name(roster_name), SERVE_TIMEOUT_S, "web/counter to answer")
            plain = plain_actor_on(owner)
            t0, got = time.monotonic(), {}
            b.crash_host(owner)
            clients = [threading.Thread(target=answering_again, args=(n, t0, got, 120.0)) for n in (PLAIN_ACTOR, roster_name)]
            for c in clients:
                c.start()
            for c in clients:
                c.join()
            ray.kill(plain, no_restart=True)
            rejoin = b.add_back(owner)
            rows.append({"trial": i + 1, "victim": owner, "ray_ms": round(got.get(PLAIN_ACTOR, float("nan")) * 1000),
                         "roster_ms": round(got.get(roster_name, float("nan")) * 1000), "rejoin_ms": round(rejoin * 1000)})
            log(f"ray-actor {i + 1}/{trials}: {json.dumps(rows[-1])}")
    finally:
        watch.done.set()
        watch.join(10)
    return {"rows": rows, "most_alive": watch.most}


# --- report --------------------------------------------------------------------------------------------

def summary(label: str, values: list[float], bound_ms: int) -> str:
    p50, p99 = pct(values, 50), pct(values, 99)
    verdict = "met" if p99 <= TARGET_RATIO_P99 * bound_ms else "MISSED"
    return (f"| {label} | {len(values)} | {p50:,.0f} | {p99:,.0f} | {bound_ms:,} | {p50 / bound_ms:.2f} | "
            f"{p99 / bound_ms:.2f} | {verdict} |")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="restart,owner,ray-actor")
    ap.add_argument("--timings", default="default,fast")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--ray-trials", type=int, default=10)
    ap.add_argument("--fast-ray-health", action="store_true", help="Ray health checks 500 ms x 3 (not Ray's defaults)")
    args = ap.parse_args()
    parts = set(args.part.split(","))
    lines = ["| what | trials | p50 ms | p99 ms | bound ms | p50/bound | p99/bound | p99 <= 1.5x bound |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    ray_lines: list[str] = []
    log(f"load average at start: {load_avg()}")
    for timing in args.timings.split(","):
        b = Bench(timing, args.fast_ray_health)
        try:
            app = app_spec(b.port, TIMINGS[timing]["heartbeat_interval_ms"])
            b.apply({"web": {"preferred_owners": [], "resources": [app]}})
            if "restart" in parts:
                r = bench_restart(b, args.trials)
                lines.append(summary(f"service killed → serving again ({timing})", [x["serving_ms"] for x in r["rows"]], r["bound_ms"]))
            if "owner" in parts:
                r = bench_owner(b, args.trials)
                lines.append(summary(f"owner host killed → serving elsewhere ({timing})", [x["serving_ms"] for x in r["rows"]], r["bound_ms"]))
            if "ray-actor" in parts and timing == "default":
                counter = {"name": "counter", "type": "ray_actor", "depends_on": ["app"],
                           "health": {"interval_ms": 1000, "timeout_ms": 2000},
                           "params": {"cls": "examples.counter:Counter", "health_method": "ping", "kwargs": {"start": 0}}}
                b.apply({"web": {"preferred_owners": [], "resources": [app, counter]}})
                r = bench_ray_actor(b, args.ray_trials)
                ray_lines += report_ray(r)
        finally:
            b.close()
    log(f"load average at end: {load_avg()}")
    print("\n".join(lines + [""] + ray_lines))
    return 0


def report_ray(r: dict[str, Any]) -> list[str]:
    ray_ms = [x["ray_ms"] for x in r["rows"]]
    roster_ms = [x["roster_ms"] for x in r["rows"]]
    speedup = pct(ray_ms, 50) / pct(roster_ms, 50)
    return ["| actor | trials | p50 ms | p99 ms | most live copies at once |", "|---|---:|---:|---:|---:|",
            f"| plain Ray actor, max_restarts=-1 | {len(ray_ms)} | {pct(ray_ms, 50):,.0f} | {pct(ray_ms, 99):,.0f} | "
            f"{r['most_alive'][PLAIN_ACTOR]} |",
            f"| Roster ray_actor (web/counter) | {len(roster_ms)} | {pct(roster_ms, 50):,.0f} | {pct(roster_ms, 99):,.0f} | "
            f"{r['most_alive']['web/counter']} |",
            "", f"Roster sooner by {speedup:.2f}x at p50 (target >= {RAY_TARGET_SPEEDUP:g}x)",
            "rows: " + json.dumps(r["rows"])]


if __name__ == "__main__":
    sys.exit(main())
