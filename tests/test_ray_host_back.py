"""A crashed host comes back before Ray has noticed that its old raylet died (S13 on Ray).

Ray lists a SIGKILLed raylet as alive until its health checks time out (here ≈ 20 s, as at
Ray's defaults; the other Ray test modules shorten it to ≈ 1 s, which hides this). For that
while `ray.nodes()` shows two alive Ray nodes with the same `roster-node-n2` resource. The
Supervisor must start n2's Node + ELM once, on the new raylet, and leave them there: before
the fix it went back to the dead raylet on its next round (killing the new Node) or started
on it first and hung until Ray gave up on it — the bimodal rejoin of docs/benchmarks.md.
Marked `ray` and `slow`.
"""

from __future__ import annotations

import os
import time

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from roster.cli_up import start_cluster, wait_all_online  # noqa: E402
from roster.ray_runtime.supervisor import NODE_RESOURCE_PREFIX, RECONCILE_PERIOD_S  # noqa: E402
from tests.ray_helpers import node, quorum_records, roster_config, status, types_after, wait_for, worker_args  # noqa: E402

MEMBERS = ["n1", "n2"]
# The old raylet stays "alive" ≈ period × threshold after its crash: room for the rejoin.
SLOW_HEALTH = {"health_check_period_ms": 2000, "health_check_failure_threshold": 10, "health_check_initial_delay_ms": 0}
REJOIN_TIMEOUT_S = 60
SETTLE_ROUNDS = 3  # reconcile rounds after the rejoin in which nothing may move


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    os.environ["RAY_AUTH_MODE"] = "disabled"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": SLOW_HEALTH})
    workers = {n: c.add_node(**worker_args(n)) for n in MEMBERS}
    ray.init(address=c.address, namespace="roster", log_to_driver=False)
    sup, _ = start_cluster(roster_config(tmp_path_factory.mktemp("roster"), MEMBERS))
    wait_all_online(MEMBERS, timeout_s=120)
    yield {"cluster": c, "workers": workers, "supervisor": sup}
    ray.shutdown()
    c.shutdown()


def _ray_nodes_of(node_id: str) -> dict[str, bool]:
    return {n["NodeID"]: n["Alive"] for n in ray.nodes() if f"{NODE_RESOURCE_PREFIX}{node_id}" in n["Resources"]}


def test_s13_host_back_before_ray_marks_it_dead_node_starts_once_on_the_new_raylet(cluster):
    sup = cluster["supervisor"]
    old_ray_node = ray.get(sup.placement.remote())["n2"]
    start = quorum_records()[-1].seq
    cluster["cluster"].remove_node(cluster["workers"]["n2"], allow_graceful=False)  # SIGKILL: a host crash
    cluster["workers"]["n2"] = cluster["cluster"].add_node(**worker_args("n2"))
    new_ray_node = wait_for(lambda: next((r for r, alive in _ray_nodes_of("n2").items() if alive and r != old_ray_node), None),
                            30, "the new raylet of n2")
    wait_for(lambda: (status("n2") or {}).get("state") == "Online" and (status("n2") or {}).get("role") == "follower",
             REJOIN_TIMEOUT_S, "n2 to rejoin")
    # Online while Ray still lists the crashed raylet: the rejoin did not wait for Ray to give up
    # on it (the old Supervisor did, in one of its two modes; a box slow past the ≈ 20 s window too).
    assert _ray_nodes_of("n2").get(old_ray_node), "n2 came back only after Ray marked its old raylet dead"
    actor_id = node("n2")._actor_id.hex()
    assert ray.get(sup.placement.remote())["n2"] == new_ray_node
    time.sleep(SETTLE_ROUNDS * RECONCILE_PERIOD_S + 0.5)
    # Still the same Node on the same raylet, Online, admitted once since the crash.
    assert ray.get(sup.placement.remote())["n2"] == new_ray_node
    assert node("n2")._actor_id.hex() == actor_id
    assert (status("n2") or {}).get("state") == "Online"
    assert len(types_after(quorum_records(), start, "NodeJoined", "n2")) == 1
