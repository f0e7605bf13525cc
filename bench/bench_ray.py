"""Roster on real Ray: failover, `roster up` to all Online, and joins. Not a test.

    .venv/bin/python bench/bench_ray.py [--trials 20] [--quick] [--part failover,ray-defaults,up,join]
                                        [--crash remove,kill] [--join-heartbeat-ms 1000] [--events 10000]

1. failover: `ray.cluster_utils.Cluster`, a head (num_cpus=1, fast Ray health checks) and
   three workers, one Roster node each (custom resource `roster-node-<id>`), heartbeats
   100 ms x 5 misses (bound 100 x 5 + regroup 100 = 600 ms). Per trial a group is moved to a
   follower, that follower's Ray node is removed (`allow_graceful=False`), and we time removal
   -> the group running on another node (statuses polled every 20 ms), removal -> its NodeDown
   (quorum record ts), removal -> `ray.nodes()` shows the Ray node dead. Then the worker is
   added back under the same resource name and the reconciler restarts the Roster node there.
   Two ways to crash (`--crash`, both by default): "remove" is `remove_node` alone, after which
   Ray leaves the node's worker processes (our actors) running for up to ~1 s; "kill" first
   SIGKILLs the raylet and every process under it, as when a host dies.
2. ray-defaults: Ray's own dead-node detection at its default health-check settings (a head
   and one worker, no Roster), for comparison.
3. up: `roster up --nodes 3` as a subprocess (embedded Ray, fresh data dir), process start ->
   "all 3 nodes Online"; then SIGINT and wait for the exit. Plus one resume of the same dir.
4. join: two Roster nodes on one embedded Ray (placement "local"), the log grown to 10,000
   events with admin commands, then a third member joins with an EMPTY replica; then it is
   killed, the log moves exactly 100 events past its replica, and it rejoins (delta sync).

Every wait is bounded; a run that cannot finish raises and still shuts its Ray down.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray

from actors import messages as m
from actors.settings import ProtocolSettings
from events.log import verify_log
from roster.cli_up import start_cluster, wait_all_online
from roster.ray_runtime.shell import NAMESPACE
from tests.ray_helpers import FAST_HEALTH, roster_config, worker_args

MEMBERS = ["n1", "n2", "n3"]
GROUP = "web"
FAILOVER_SETTINGS = {"heartbeat_interval_ms": 100, "heartbeat_misses_before_regroup": 5}
POLL_S = 0.02
FAILOVER_TIMEOUT_S = 30.0
REJOIN_TIMEOUT_S = 120.0
TARGET_RATIO_P99 = 1.5
UP_PORT = 19700
UP_TIMEOUT_S = 180.0
JOIN_WAVE = 25  # admin commands in flight while growing the log
JOIN_TIMEOUT_S = 120.0
DELTA_TARGET_S = 0.5


# --- small helpers -------------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_avg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def wall_of(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p99 of 20 samples is the largest)."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def wait_for(pred: Callable[[], Any], timeout_s: float, what: str, period_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(period_s)
    raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")


def actor(name: str) -> Any:
    return ray.get_actor(name, namespace=NAMESPACE)


def status(node_id: str, timeout: float = 5) -> dict[str, Any] | None:
    try:
        return ray.get(actor(m.node_addr(node_id)).status.remote(), timeout=timeout)
    except Exception:  # noqa: BLE001 - gone or not yet there
        return None


def leader_of(ids: list[str]) -> str | None:
    for n in ids:
        s = status(n)
        if s and s["role"] == "leader":
            return n
    return None


def admin(via: str, op: str, **args: Any) -> m.AdminReply:
    return ray.get(actor(m.node_addr(via)).admin.remote(op, args), timeout=30)


def quorum_head() -> int:
    return ray.get(actor(m.QUORUM).info.remote(), timeout=10)["head_seq"]


def quorum_records(from_seq: int) -> list:
    return ray.get(actor(m.QUORUM).records.remote(from_seq), timeout=30)


def _proc_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _descendants(root: int) -> dict[int, str]:
    """pid -> cmdline of every process under `root` (read from /proc; no psutil here)."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = {}, [root]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in out:
                try:
                    out[c] = Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    out[c] = ""
                todo.append(c)
    return out


# --- 1. failover ---------------------------------------------------------------------------------

def bench_failover(trials: int, crash: str, raylet_check_ms: int | None = None) -> dict[str, Any]:
    from ray.cluster_utils import Cluster

    bound_ms = ProtocolSettings(**FAILOVER_SETTINGS).failover_bound_ms
    load_start = load_avg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-failover-"))
    system_config = dict(FAST_HEALTH)
    if raylet_check_ms is not None:  # how often a worker checks that its raylet lives (Ray default 1000)
        system_config["raylet_death_check_interval_milliseconds"] = raylet_check_ms
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": system_config})
    rows: list[dict[str, Any]] = []
    try:
        workers = {n: c.add_node(**worker_args(n)) for n in MEMBERS}
        ray.init(address=c.address, namespace=NAMESPACE, log_to_driver=False)
        start_cluster(roster_config(tmp / "data", MEMBERS, settings=FAILOVER_SETTINGS))
        wait_all_online(MEMBERS, timeout_s=120)
        leader = wait_for(lambda: leader_of(MEMBERS), 30, "a leader")
        wait_for(lambda: _ok(admin(leader, "group-create", group=GROUP)), 30, "group-create")
        for i in range(trials):
            row = _failover_trial(c, workers, i, crash)
            row["bound_ms"] = bound_ms
            rows.append(row)
            log(f"failover trial {i + 1}/{trials}: {json.dumps(row)}")
    finally:
        ray.shutdown()
        c.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"rows": rows, "bound_ms": bound_ms, "crash": crash, "raylet_check_ms": raylet_check_ms,
            "load_start": load_start, "load_end": load_avg()}


def _ok(reply: m.AdminReply) -> m.AdminReply | None:
    return reply if reply.ok or reply.status == 409 else None


def _failover_trial(c: Any, workers: dict[str, Any], i: int, crash: str) -> dict[str, Any]:
    """crash "remove": only `remove_node(allow_graceful=False)`: Ray SIGKILLs the raylet, and the
    node's worker processes (our actors) live on until they notice (Ray checks every 1 s:
    `raylet_death_check_interval_milliseconds`). crash "kill": SIGKILL the raylet and every
    process under it at once (a host that dies), then `remove_node`."""
    leader = wait_for(lambda: leader_of(MEMBERS), 30, "a leader")
    followers = [n for n in MEMBERS if n != leader]
    victim = followers[i % len(followers)]
    others = [n for n in MEMBERS if n != victim]
    wait_for(lambda: _ok(admin(leader, "group-move", group=GROUP, node=victim)), 30, f"group-move to {victim}")
    wait_for(lambda: (status(victim) or {}).get("running") == [GROUP]
             and not any(GROUP in (status(n) or {}).get("running", []) for n in others), 30, f"{GROUP} on {victim} only")
    time.sleep(0.5 + random.uniform(0, FAILOVER_SETTINGS["heartbeat_interval_ms"] / 1000))  # random crash phase
    handles = {n: actor(m.node_addr(n)) for n in others}
    worker = workers[victim]
    ray_id = worker.node_id
    raylet_pid = worker.all_processes["raylet"][0].process.pid
    procs = _descendants(raylet_pid)
    node_pids = [p for p, cmd in procs.items() if "NodeActor" in cmd]
    head = quorum_head()
    removed: dict[str, float] = {}

    def remove() -> None:
        if crash == "kill":
            # The raylet first, so it cannot notice its dying children and unregister itself from
            # the GCS (then Ray would "detect" the death at once); then its workers, which this
            # script's Cluster started.
            for pid in [raylet_pid, *procs]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        c.remove_node(worker, allow_graceful=False)
        removed["returned"] = time.monotonic()

    th = threading.Thread(target=remove)
    w0, m0 = time.time(), time.monotonic()
    th.start()
    failover = owner = ray_dead = node_gone = all_gone = None
    deadline = m0 + FAILOVER_TIMEOUT_S
    while time.monotonic() < deadline:
        tick = time.monotonic()
        if failover is None:
            try:
                sts = ray.get([handles[n].status.remote() for n in others], timeout=2)
            except Exception:  # noqa: BLE001
                sts = []
            for n, s in zip(others, sts):
                if GROUP in s["running"]:
                    failover, owner = time.monotonic() - m0, n
        now = time.monotonic() - m0
        if node_gone is None and not any(_proc_alive(p) for p in node_pids):
            node_gone = now
        if all_gone is None and not any(_proc_alive(p) for p in procs):
            all_gone = now
        if ray_dead is None and any(n["NodeID"] == ray_id and not n["Alive"] for n in ray.nodes()):
            ray_dead = time.monotonic() - m0
        if failover is not None and ray_dead is not None and node_gone is not None:
            break
        time.sleep(max(0.0, POLL_S - (time.monotonic() - tick)))
    th.join(30)
    if failover is None:
        raise TimeoutError(f"trial {i}: {GROUP} did not fail over within {FAILOVER_TIMEOUT_S:g} s")
    time.sleep(0.3)  # let the last records of the round commit
    recs = quorum_records(head + 1)
    down = next((r for r in recs if r.event.type == "NodeDown" and r.node == victim), None)
    moved = next((r for r in recs if r.event.type == "GroupMoved" and r.event.group == GROUP
                  and r.event.to_node not in (None, victim)), None)
    misses = [r.event.count for r in recs if r.event.type == "HeartbeatMissed" and r.node == victim]
    regroups = [r for r in recs if r.event.type == "Regrouped"]
    other_down = [r.node for r in recs if r.event.type == "NodeDown" and r.node != victim]
    row = {"trial": i + 1, "victim": victim, "leader": leader, "new_owner": owner,
           "failover_ms": round(failover * 1000), "node_down_ms": round((wall_of(down.ts) - w0) * 1000) if down else None,
           "group_moved_ms": round((wall_of(moved.ts) - w0) * 1000) if moved else None,
           "ray_dead_ms": round(ray_dead * 1000) if ray_dead is not None else None,
           "remove_call_ms": round((removed["returned"] - m0) * 1000) if "returned" in removed else None,
           "node_proc_gone_ms": round(node_gone * 1000) if node_gone is not None else None,
           "all_procs_gone_ms": round(all_gone * 1000) if all_gone is not None else None,
           "misses": misses, "regroups": len(regroups), "other_down": other_down}
    if node_gone is not None:  # Roster's own detection, counted from when its NodeActor really died
        row["failover_after_exit_ms"] = row["failover_ms"] - row["node_proc_gone_ms"]
    # Add the worker back under the same Roster id; the reconciler starts its Node + ELM there.
    r0 = time.monotonic()
    workers[victim] = c.add_node(**worker_args(victim))
    row["ray_node_add_ms"] = round((time.monotonic() - r0) * 1000)
    wait_for(lambda: _online_follower(victim), REJOIN_TIMEOUT_S, f"{victim} to rejoin", period_s=0.1)
    row["rejoin_ms"] = round((time.monotonic() - r0) * 1000)
    row["leader_after"] = leader_of(MEMBERS)
    after = quorum_records(head + 1)
    row["events"] = [f"{r.seq}:{r.event.type}({r.node or ''})@{round((wall_of(r.ts) - w0) * 1000)}" for r in after
                     if r.event.type not in ("HeartbeatMissed", "GroupStateChanged")]
    row["ray_node_added_at_ms"] = round((r0 - m0) * 1000)
    return row


def _online_follower(node_id: str) -> bool:
    s = status(node_id)
    return bool(s and s["state"] == "Online" and s["role"] == "follower")


# --- 2. Ray's own detection at its defaults -----------------------------------------------------

def bench_ray_defaults(trials: int) -> dict[str, Any]:
    from ray.cluster_utils import Cluster

    load_start = load_avg()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    out = []
    try:
        ray.init(address=c.address, namespace="bench-ray-defaults", log_to_driver=False)
        for i in range(trials):
            w = c.add_node(num_cpus=1)
            wait_for(lambda w=w: any(n["NodeID"] == w.node_id and n["Alive"] for n in ray.nodes()), 60, "the worker")
            time.sleep(1.0)
            th = threading.Thread(target=c.remove_node, args=(w,), kwargs={"allow_graceful": False})
            m0 = time.monotonic()
            th.start()
            wait_for(lambda w=w: any(n["NodeID"] == w.node_id and not n["Alive"] for n in ray.nodes()), 120,
                     "Ray to mark the node dead", period_s=0.02)
            out.append(round((time.monotonic() - m0) * 1000))
            th.join(30)
            log(f"ray defaults trial {i + 1}/{trials}: {out[-1]} ms")
    finally:
        ray.shutdown()
        c.shutdown()
    return {"ms": out, "load_start": load_start, "load_end": load_avg()}


# --- 3. roster up --------------------------------------------------------------------------------

def _roster_cmd() -> list[str]:
    script = Path(sys.executable).parent / "roster"
    return [str(script)] if script.exists() else [sys.executable, "-m", "roster.cli"]


def _one_up(data_dir: Path, port: int, tmp: Path, label: str) -> dict[str, Any]:
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    cmd = _roster_cmd() + ["up", "--nodes", "3", "--data-dir", str(data_dir), "--http-port", str(port)]
    err = open(tmp / f"up-{label}.stderr", "w")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, start_new_session=True, cwd=tmp)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in p.stdout] + [lines.put(None)], daemon=True)
    reader.start()
    online = None
    out: list[str] = []
    try:
        while online is None:
            line = lines.get(timeout=max(0.1, UP_TIMEOUT_S - (time.monotonic() - t0)))
            if line is None:
                raise RuntimeError(f"roster up exited early ({p.wait()}): {''.join(out)[-2000:]}")
            out.append(line)
            if "all 3 nodes Online" in line:
                online = time.monotonic() - t0
        s0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=120)
        stop = time.monotonic() - s0
        reader.join(5)
        while True:
            try:
                x = lines.get_nowait()
            except queue.Empty:
                break
            if x:
                out.append(x)
    except BaseException:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)  # only the process group we started
            p.wait(30)
        raise
    finally:
        err.close()
    left = sum(1 for x in out if x.strip().endswith(" left"))
    return {"run": label, "online_s": round(online, 2), "stop_s": round(stop, 2), "rc": rc, "left": left,
            "created": any(" created;" in x for x in out)}


_UP_STEPS = r"""
import json, sys, time
t0 = time.monotonic()
from pathlib import Path
import argparse
from roster import cli_up
from roster.datadir import init_data_dir, token_path
ray_imported = time.monotonic()
import ray
data = Path(sys.argv[1]); port = int(sys.argv[2])
members = ("n1", "n2", "n3")
ident, created = init_data_dir(data, "roster", members)
t_init = time.monotonic()
cli_up._init_ray(None)
t_ray = time.monotonic()
args = argparse.Namespace(heartbeat_ms=1000, misses=5)
config = {"data_dir": str(data.resolve()), "cluster_id": ident.cluster_id, "cluster_name": ident.name,
          "members": list(ident.members), "create": created, "settings": cli_up._settings(args), "placement": "local",
          "nodes": 3, "http_host": "127.0.0.1", "http_port": port, "token": token_path(data).read_text().strip(),
          "auto_add": False}
sup, desc = cli_up.start_cluster(config)
t_sup = time.monotonic()
cli_up.wait_all_online(sorted(desc["nodes"]))
t_online = time.monotonic()
ray.get(sup.down.remote(True))
cli_up._kill_all()
ray.shutdown()
print(json.dumps({"imports_s": t_init - t0, "ray_init_s": t_ray - t_init, "start_cluster_s": t_sup - t_ray,
                  "wait_all_online_s": t_online - t_sup, "total_s": t_online - t0}))
"""


def _up_breakdown(data_dir: Path, port: int, tmp: Path) -> dict[str, Any]:
    """The steps of `roster up` timed one by one (the same calls, in a child process)."""
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    with open(tmp / "up-steps.stderr", "w") as err:
        out = subprocess.run([sys.executable, "-c", _UP_STEPS, str(data_dir), str(port)], stdout=subprocess.PIPE,
                             stderr=err, text=True, env=env, timeout=UP_TIMEOUT_S, cwd=tmp, start_new_session=True,
                             check=True)
    line = [x for x in out.stdout.splitlines() if x.startswith("{")][-1]
    return {k: round(v, 2) for k, v in json.loads(line).items()}


def bench_up(runs: int, port: int) -> dict[str, Any]:
    load_start = load_avg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-up-"))
    rows = []
    try:
        for i in range(runs):
            rows.append(_one_up(tmp / f"data{i}", port, tmp, f"fresh {i + 1}"))
            log(f"roster up: {rows[-1]}")
        rows.append(_one_up(tmp / "data0", port, tmp, "resume of fresh 1"))
        log(f"roster up: {rows[-1]}")
        steps = [_up_breakdown(tmp / f"steps{i}", port, tmp) for i in range(max(1, runs - 1))]
        log(f"roster up steps: {steps}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"rows": rows, "steps": steps, "load_start": load_start, "load_end": load_avg()}


# --- 4. join ------------------------------------------------------------------------------------

def _grow(via: str, target: int) -> dict[str, Any]:
    """Append admin events until the quorum log holds `target`: waves of group-create then
    group-delete (distinct names, JOIN_WAVE in flight), then pause/resume (one event each)
    to land exactly on the target."""
    handle = actor(m.node_addr(via))
    t0 = time.monotonic()
    failed = cmds = 0
    k = 0
    head = quorum_head()
    per_pair = None
    while True:
        remaining = target - head
        wave = JOIN_WAVE if per_pair is None else min(JOIN_WAVE, int(remaining / per_pair))
        if wave < 1:
            break
        names = [f"b{k + j}" for j in range(wave)]
        k += wave
        before = head
        for op in ("group-create", "group-delete"):
            replies = ray.get([handle.admin.remote(op, {"group": g}) for g in names], timeout=120)
            cmds += len(replies)
            failed += sum(1 for r in replies if not r.ok)
        time.sleep(0.05)  # the placements that follow the creates (GroupMoved, ...) commit
        head = quorum_head()
        per_pair = max(per_pair or 0, (head - before) / wave)
    head = _top_up(via, target)
    return {"head": head, "seconds": round(time.monotonic() - t0, 1), "commands": cmds, "failed": failed,
            "events_per_create_delete": per_pair}


def _top_up(via: str, target: int) -> int:
    """One event per admin command (pause / resume a follower) until the quorum head is `target`."""
    other = next(n for n in ("n1", "n2") if n != via)
    head = quorum_head()
    paused = (status(other) or {}).get("state") == "Paused"
    while head < target:
        reply = admin(via, "resume" if paused else "pause", node=other)
        if not reply.ok and reply.status != 409:  # 409: its replica's state lagged; flip and retry
            raise RuntimeError(f"top-up: {reply}")
        paused = not paused
        head = quorum_head()
    return quorum_head()  # (the follower may be left Paused: harmless, no groups exist)


def _kill_n3(handles: dict[str, Any]) -> None:
    for name in ("node", "elm"):
        if name in handles:
            ray.kill(handles.pop(name), no_restart=True)
    for a in (m.node_addr("n3"), m.elm_addr("n3")):
        wait_for(lambda a=a: _gone(a), 30, f"{a} to be gone")


def _gone(name: str) -> bool:
    try:
        ray.get_actor(name, namespace=NAMESPACE)
        return False
    except ValueError:
        return True


def _join_n3(data: Path, cluster_id: str, settings: dict[str, int], handles: dict[str, Any], label: str) -> dict[str, Any]:
    from roster.ray_runtime.actors import ElmActor
    from roster.ray_runtime.node_actor import NodeActor

    start_seq = quorum_head()
    e0 = time.monotonic()
    handles["elm"] = ElmActor.options(name=m.elm_addr("n3"), namespace=NAMESPACE).remote("n3", str(data), settings)
    replica_seq = ray.get(handles["elm"].head.remote(), timeout=60)[0]
    elm_open = time.monotonic() - e0
    handles["node"] = nd = NodeActor.options(name=m.node_addr("n3"), namespace=NAMESPACE).remote(
        "n3", cluster_id, str(data / "secret.key"), settings, MEMBERS)
    ray.get(nd.status.remote(), timeout=60)  # constructed: the process is up
    w0, t0 = time.time(), time.monotonic()
    ref = nd.start.remote()
    started = online = None
    while time.monotonic() - t0 < JOIN_TIMEOUT_S:
        tick = time.monotonic()
        if started is None and ray.wait([ref], timeout=0)[0]:
            ray.get(ref)
            started = time.monotonic() - t0
        s = ray.get(nd.status.remote(), timeout=10)
        if s["role"] == "follower" and s["state"] == "Online":
            online = time.monotonic() - t0
            break
        time.sleep(max(0.0, POLL_S - (time.monotonic() - tick)))
    if online is None:
        raise TimeoutError(f"{label}: n3 not Online within {JOIN_TIMEOUT_S:g} s")
    time.sleep(0.2)
    recs = quorum_records(start_seq + 1)
    synced = [r for r in recs if r.event.type == "ConfigDbSynced" and r.node == "n3"]
    joined = [r for r in recs if r.event.type == "NodeJoined" and r.node == "n3"]
    rejected = [r for r in recs if r.event.type == "JoinRejected" and r.node == "n3"]
    sy = synced[-1].event if synced else None
    return {"case": label, "log_head": start_seq, "replica_seq": replica_seq, "behind": start_seq - replica_seq,
            "elm_open_ms": round(elm_open * 1000), "start_call_ms": round(started * 1000) if started else None,
            "online_ms": round(online * 1000),
            "joined_ts_ms": round((wall_of(joined[-1].ts) - w0) * 1000) if joined else None,
            "mode": sy.mode if sy else None, "from_seq": sy.from_seq if sy else None, "to_seq": sy.to_seq if sy else None,
            "span": (sy.to_seq - sy.from_seq + 1) if sy else None, "syncs": len(synced), "rejections": len(rejected),
            "sponsor": sy.sponsor if sy else None,
            "n3_events": dict(Counter(r.event.type for r in recs if r.node == "n3")),
            "other_events": dict(Counter(f"{r.event.type}({r.node})" for r in recs if r.node != "n3"))}


def _wait_down(since: int, timeout_s: float = 60) -> None:
    wait_for(lambda: any(r.event.type == "NodeDown" and r.node == "n3" for r in quorum_records(since + 1)),
             timeout_s, "NodeDown(n3)", period_s=0.2)


def bench_join(n_events: int, behind: int, empty_trials: int, delta_trials: int, settings: dict[str, int]) -> dict[str, Any]:
    load_start = load_avg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-join-"))
    data = tmp / "data"
    rows: list[dict[str, Any]] = []
    grow: dict[str, Any] = {}
    handles: dict[str, Any] = {}
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, namespace=NAMESPACE, log_to_driver=False)
        cfg = roster_config(data, ["n1", "n2"], settings=settings)
        cfg.update(placement="local", http_port=None)
        _sup, desc = start_cluster(cfg)
        wait_all_online(["n1", "n2"], timeout_s=120)
        leader = wait_for(lambda: leader_of(["n1", "n2"]), 30, "a leader")
        grow = _grow(leader, n_events - 1)  # the add-node below is the 10,000th event
        log(f"grown: {grow}")
        reply = admin(leader, "add-node", node="n3")
        assert reply.ok, reply
        for i in range(empty_trials):
            if i > 0:  # the same member comes back on an empty disk (its old replica moved away)
                mark = quorum_head()
                _kill_n3(handles)
                _wait_down(mark)
                shutil.move(str(data / "nodes" / "n3"), str(tmp / f"n3-aside-{i}"))
            rows.append(_join_n3(data, desc["cluster_id"], settings, handles,
                                 "empty replica (new member)" if i == 0 else "empty replica (disk wiped)"))
            log(f"join: {rows[-1]}")
        for i in range(delta_trials):
            mark = quorum_head()
            _kill_n3(handles)
            _wait_down(mark)
            replica = verify_log(data / "nodes" / "n3" / "log").head_seq
            leader = wait_for(lambda: leader_of(["n1", "n2"]), 30, "a leader")
            _top_up(leader, replica + behind)
            rows.append(_join_n3(data, desc["cluster_id"], settings, handles, f"{behind} behind"))
            log(f"join: {rows[-1]}")
    finally:
        handles.clear()
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"rows": rows, "grow": grow, "load_start": load_start, "load_end": load_avg(), "settings": settings}


# --- tables -------------------------------------------------------------------------------------

def table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
    out += ["| " + " | ".join("-" if v is None else str(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def report_failover(res: dict[str, Any]) -> str:
    rows, bound = res["rows"], res["bound_ms"]
    cols = ["trial", "leader", "victim", "failover_ms", "node_down_ms", "group_moved_ms", "ray_dead_ms", "node_proc_gone_ms",
            "remove_call_ms", "ray_node_add_ms", "rejoin_ms", "misses", "regroups", "other_down"]
    check = f", raylet_death_check_interval_milliseconds={res['raylet_check_ms']}" if res.get("raylet_check_ms") else ""
    text = [f"failover trials, crash={res['crash']}{check} (bound {bound} ms; load {res['load_start']} -> {res['load_end']})",
            table(cols, [[r.get(c) for c in cols] for r in rows]), ""]
    summary = []
    for key, what in (("failover_ms", "removal -> group running elsewhere"), ("node_down_ms", "removal -> NodeDown (quorum ts)"),
                      ("group_moved_ms", "removal -> GroupMoved (quorum ts)"), ("ray_dead_ms", "removal -> ray.nodes() Alive False"),
                      ("node_proc_gone_ms", "removal -> NodeActor process gone"),
                      ("failover_after_exit_ms", "NodeActor process gone -> group running elsewhere"), ("rejoin_ms", "add_node -> back Online follower")):
        v = [r[key] for r in rows if r.get(key) is not None]
        if not v:
            continue
        summary.append([what, len(v), round(pct(v, 50)), round(pct(v, 99)), max(v),
                        f"{pct(v, 50) / bound:.2f}x", f"{pct(v, 99) / bound:.2f}x"])
    text.append(table(["measure", "n", "p50 ms", "p99 ms", "max ms", "p50/bound", "p99/bound"], summary))
    fo = [r["failover_ms"] for r in rows]
    if fo:
        p99 = pct(fo, 99) / bound
        text.append(f"failover p99 = {p99:.2f}x bound (target <= {TARGET_RATIO_P99}x: {'met' if p99 <= TARGET_RATIO_P99 else 'MISSED'})")
    return "\n".join(text)


def report_ray_defaults(res: dict[str, Any]) -> str:
    v = res["ms"]
    return (f"Ray's own dead-node detection at its default health checks (load {res['load_start']} -> {res['load_end']}): "
            f"{v} ms" + (f", median {statistics.median(v):.0f} ms" if v else ""))


def report_up(res: dict[str, Any]) -> str:
    cols = ["run", "online_s", "stop_s", "rc", "left", "created"]
    steps = ["imports_s", "ray_init_s", "start_cluster_s", "wait_all_online_s", "total_s"]
    return (f"roster up --nodes 3 (load {res['load_start']} -> {res['load_end']})\n"
            + table(cols, [[r[c] for c in cols] for r in res["rows"]]) + "\n\nthe same steps timed one by one (fresh dir)\n"
            + table(steps, [[r[c] for c in steps] for r in res.get("steps", [])]))


def report_join(res: dict[str, Any]) -> str:
    cols = ["case", "log_head", "replica_seq", "behind", "elm_open_ms", "start_call_ms", "online_ms", "joined_ts_ms",
            "mode", "from_seq", "to_seq", "span", "syncs", "n3_joined", "n3_missed", "n3_down"]
    for r in res["rows"]:
        ev = r.get("n3_events", {})
        r["n3_joined"], r["n3_missed"], r["n3_down"] = ev.get("NodeJoined", 0), ev.get("HeartbeatMissed", 0), ev.get("NodeDown", 0)
    g = res["grow"]
    text = [f"join (settings {res['settings']}; load {res['load_start']} -> {res['load_end']})",
            f"log grown to {g.get('head')} events in {g.get('seconds')} s with {g.get('commands')} admin commands "
            f"({g.get('failed')} failed; {g.get('events_per_create_delete')} events per create+delete)",
            table(cols, [[r[c] for c in cols] for r in res["rows"]])]
    others = Counter()
    for r in res["rows"]:
        others.update(r.get("other_events", {}))
    text.append(f"records about other nodes appended during the joins: {dict(others) or 'none'}")
    delta = [r for r in res["rows"] if r["case"].endswith("behind")]
    if delta:
        worst = max(r["online_ms"] for r in delta)
        ok = all(r["mode"] == "delta" for r in delta) and worst < DELTA_TARGET_S * 1000
        text.append(f"behind-join: modes {sorted({r['mode'] for r in delta})}, spans {[r['span'] for r in delta]}, "
                    f"worst {worst} ms (target delta and < {DELTA_TARGET_S * 1000:.0f} ms: {'met' if ok else 'MISSED'})")
    return "\n".join(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20, help="failover trials (default 20)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run: 3 trials, 1 up, a 1,000-event join")
    ap.add_argument("--part", default="failover,ray-defaults,up,join", help="comma-separated parts to run")
    ap.add_argument("--crash", default="remove,kill",
                    help="how a worker dies: remove (remove_node only), kill (SIGKILL its processes too); both by default")
    ap.add_argument("--raylet-death-check-ms", type=int,
                    help="Ray's raylet_death_check_interval_milliseconds for the failover cluster (Ray's default 1000)")
    ap.add_argument("--events", type=int, default=10_000, help="log size for the join (default 10,000)")
    ap.add_argument("--behind", type=int, default=100, help="events the rejoining replica misses (default 100)")
    ap.add_argument("--join-heartbeat-ms", type=int, default=1000, help="heartbeat interval of the join cluster")
    ap.add_argument("--up-runs", type=int, default=3)
    ap.add_argument("--empty-trials", type=int, default=3, help="joins with an empty replica (default 3)")
    ap.add_argument("--delta-trials", type=int, default=5, help="rejoins --behind events behind (default 5)")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args()
    parts = set(args.part.split(","))
    trials, up_runs, events, empty_trials, delta_trials, ray_def = (args.trials, args.up_runs, args.events,
                                                                   args.empty_trials, args.delta_trials, 2)
    if args.quick:
        trials, up_runs, events, empty_trials, delta_trials, ray_def = min(trials, 3), 1, min(events, 1000), 1, 1, 1
    log(f"load {load_avg()}; parts {sorted(parts)}")
    results: dict[str, Any] = {}
    reports: list[str] = []
    for crash in args.crash.split(","):
        if "failover" in parts:
            results[f"failover_{crash}"] = bench_failover(trials, crash, args.raylet_death_check_ms)
            reports.append(report_failover(results[f"failover_{crash}"]))
            print(reports[-1] + "\n", flush=True)
    if "ray-defaults" in parts:
        results["ray_defaults"] = bench_ray_defaults(ray_def)
        reports.append(report_ray_defaults(results["ray_defaults"]))
        print(reports[-1] + "\n", flush=True)
    if "up" in parts:
        results["up"] = bench_up(up_runs, UP_PORT)
        reports.append(report_up(results["up"]))
        print(reports[-1] + "\n", flush=True)
    if "join" in parts:
        settings = {"heartbeat_interval_ms": args.join_heartbeat_ms, "heartbeat_misses_before_regroup": 5}
        results["join"] = bench_join(events, args.behind, empty_trials, delta_trials, settings)
        reports.append(report_join(results["join"]))
        print(reports[-1] + "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
