"""`roster up` as a user runs it: a subprocess on embedded Ray, Ctrl-C, and a restart (S2, S19, S21)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

UP_TIMEOUT_S = 180
HTTP_PORT = 18700
GROUPS = ("web", "db")
PLACED_WAIT_S = 30


def _start(data_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "roster.cli", "up", "--nodes", "3", "--data-dir", str(data_dir),
           "--http-port", str(HTTP_PORT), "--heartbeat-ms", "300"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _wait_line(proc: subprocess.Popen, needle: str, lines: list[str]) -> None:
    deadline = time.monotonic() + UP_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return
    raise AssertionError(f"no '{needle}' from roster up:\n{''.join(lines)}")


def _stop(proc: subprocess.Popen, lines: list[str]) -> int:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=UP_TIMEOUT_S)
    lines.append(out)
    return proc.returncode


def _create_group(data_dir: Path, name: str) -> None:
    token = (data_dir / "admin.token").read_text().strip()
    req = urllib.request.Request(f"http://127.0.0.1:{HTTP_PORT}/v1/groups", method="POST",
                                 data=json.dumps({"name": name}).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


def _wait_placed(groups: tuple[str, ...]) -> None:
    deadline = time.monotonic() + PLACED_WAIT_S
    while time.monotonic() < deadline:
        body = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/v1/membership", timeout=10).read())
        owners = {g["name"]: g["owner"] for g in body["groups"]}
        if all(owners.get(g) for g in groups):
            return
        time.sleep(0.2)
    raise AssertionError(f"groups {groups} not placed: {owners}")


def test_roster_up_ctrl_c_leaves_and_a_restart_resumes_the_same_cluster(tmp_path: Path) -> None:
    """S1/S2: one command creates the cluster; Ctrl-C is a planned leave (NodeExited for every
    node, exit 0); starting again on the same data dir resumes it (same id, no second creation)."""
    data_dir = tmp_path / "data"
    lines: list[str] = []
    proc = _start(data_dir)
    try:
        _wait_line(proc, "all 3 nodes Online", lines)
        body = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT + 1}/v1/membership", timeout=10).read())
        assert {n["id"]: n["state"] for n in body["nodes"]} == {"n1": "Online", "n2": "Online", "n3": "Online"}
        for group in GROUPS:
            _create_group(data_dir, group)
        _wait_placed(GROUPS)
    finally:
        code = _stop(proc, lines)
    assert code == 0, "".join(lines)
    assert "Traceback" not in "".join(lines)
    cluster_id = json.loads((data_dir / "cluster.json").read_text())["cluster_id"]
    from events.log import EventLog

    with EventLog.open(data_dir / "quorum" / "log") as log:
        records = list(log.iter_from(1))
    exited = {r.node for r in records if r.event.type == "NodeExited"}
    assert exited == {"n1", "n2", "n3"}
    # Issue 12 §2: a planned stop of the whole cluster takes each group offline once, saying
    # so, and moves none from node to node.
    stopping = next(r.seq for r in records if r.event.type == "ClusterStopping")
    after = [r for r in records if r.seq > stopping]
    assert not [r for r in after if r.event.type == "GroupMoved"], [r.event for r in after]
    offline = [r.event.group for r in after if r.event.type == "GroupStateChanged"]
    assert sorted(offline) == sorted(GROUPS) and all(
        r.event.reason == "cluster stopping" for r in after if r.event.type == "GroupStateChanged")
    assert "groups offline (cluster stopping)" in "".join(lines)
    first_run = len(records)

    lines = []
    proc = _start(data_dir)
    try:
        _wait_line(proc, "all 3 nodes Online", lines)
        assert f"({cluster_id}) resumed" in "".join(lines)
        _wait_placed(GROUPS)  # placed again by their policies on the next start
        # Issue 11: a node restarts from its ELM's folded state and loads the older records
        # after joining; its HTTP log still reads from seq 1, every record in order.
        page = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{HTTP_PORT + 1}/v1/events?from=1&limit=1000", timeout=30).read())
    finally:
        assert _stop(proc, lines) == 0, "".join(lines)
    with EventLog.open(data_dir / "quorum" / "log") as log:
        records = list(log.iter_from(1))
    assert len(records) > first_run
    served = page["events"]
    assert len(served) > first_run and [e["seq"] for e in served] == list(range(1, len(served) + 1))
    assert [e["hash"] for e in served] == [r.hash for r in records[: len(served)]]
    assert sum(1 for r in records if r.event.type == "ClusterCreated") == 1
