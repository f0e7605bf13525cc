"""Helpers for tests and benchmarks on real Ray: a Roster cluster on `ray.cluster_utils.Cluster`."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Callable

import ray

from actors import messages as m
from roster.datadir import init_data_dir, token_path
from roster.ray_runtime.shell import NAMESPACE
from roster.ray_runtime.supervisor import NODE_RESOURCE_PREFIX

FAST_HEALTH = {"health_check_period_ms": 500, "health_check_failure_threshold": 3, "health_check_initial_delay_ms": 0}
TEST_SETTINGS = {"heartbeat_interval_ms": 300, "heartbeat_misses_before_regroup": 5}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a node's HTTP server or a service)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_args(node_id: str) -> dict[str, Any]:
    return {"num_cpus": 1, "resources": {f"{NODE_RESOURCE_PREFIX}{node_id}": 1}}


def roster_config(data_dir: Path, members: list[str], *, http_port: int | None = None,
                  settings: dict[str, int] | None = None) -> dict[str, Any]:
    ident, created = init_data_dir(data_dir, "test", tuple(members))
    return {"data_dir": str(data_dir), "cluster_id": ident.cluster_id, "cluster_name": ident.name,
            "members": list(ident.members), "create": created, "settings": settings or TEST_SETTINGS,
            "placement": "per-ray-node", "nodes": len(members), "http_host": "127.0.0.1",
            "http_port": http_port, "token": token_path(data_dir).read_text().strip(), "auto_add": False}


def node(node_id: str) -> Any:
    return ray.get_actor(m.node_addr(node_id), namespace=NAMESPACE)


def status(node_id: str) -> dict[str, Any] | None:
    try:
        return ray.get(node(node_id).status.remote(), timeout=5)
    except Exception:  # noqa: BLE001 - the actor is gone or not yet there
        return None


def quorum_records() -> list:
    return ray.get(ray.get_actor(m.QUORUM, namespace=NAMESPACE).records.remote(1), timeout=10)


def types_after(records: list, seq: int, type_name: str, node: str | None = None) -> list:
    return [r for r in records if r.seq > seq and r.event.type == type_name and (node is None or r.node == node)]


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, period_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(period_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}\n{_recent_log()}")


def _recent_log(last: int = 25) -> str:
    """The tail of the quorum log, to see why a wait timed out."""
    try:
        records = quorum_records()[-last:]
    except Exception as exc:  # noqa: BLE001 - the quorum may be the thing that is down
        return f"(no quorum log: {exc})"
    rows = [f"  {r.seq:>5} e{r.epoch} {r.ts[11:23]} {r.event.type:<18} {r.node or '-':<4} "
            f"{r.event.model_dump(exclude={'type', 'v'})}" for r in records]
    return "quorum log tail:\n" + "\n".join(rows)


def leader_of(node_ids: list[str]) -> str | None:
    for n in node_ids:
        s = status(n)
        if s and s["role"] == "leader":
            return n
    return None


ADMIN_RETRIES = 20
ADMIN_RETRY_S = 0.5


def admin(via: str, op: str, **args: Any) -> m.AdminReply:
    """An admin command, retried while the answer is 503 (no leader right now), as a client would."""
    for _ in range(ADMIN_RETRIES):
        reply = ray.get(node(via).admin.remote(op, args), timeout=30)
        if reply.status != 503:
            return reply
        time.sleep(ADMIN_RETRY_S)
    return reply
