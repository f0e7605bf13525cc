"""Roster on real multi-node Ray (`ray.cluster_utils.Cluster`: a head and three workers).

The head holds the Quorum and the Supervisor; each worker runs one Roster node (n1..n3),
pinned to it. The tests run in order on one shared cluster, each leaving it as the next
expects. Marked `ray` and `slow`: `-m "not slow"` skips them.
"""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from roster.cli_up import start_cluster, wait_all_online  # noqa: E402
from tests.ray_helpers import (FAST_HEALTH, admin, leader_of, node, quorum_records, roster_config, status,  # noqa: E402
                               types_after, wait_for, worker_args)

MEMBERS = ["n1", "n2", "n3"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    os.environ["RAY_AUTH_MODE"] = "disabled"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": FAST_HEALTH})
    workers = {n: c.add_node(**worker_args(n)) for n in MEMBERS}
    ray.init(address=c.address, namespace="roster", log_to_driver=False)
    data_dir = tmp_path_factory.mktemp("roster")
    sup, desc = start_cluster(roster_config(data_dir, MEMBERS))
    state = {"cluster": c, "workers": workers, "data_dir": data_dir, "supervisor": sup, "desc": desc}
    yield state
    ray.shutdown()
    c.shutdown()


def test_all_nodes_online_one_leader_identical_replicas(cluster):
    """S4–S6, S11, invariant 3: every node Online, one leader, the same digest on every replica."""
    statuses = wait_all_online(MEMBERS, timeout_s=90)
    assert len({s["leader"] for s in statuses.values()}) == 1
    head = quorum_records()[-1].seq
    wait_for(lambda: all((status(n) or {}).get("seq", 0) >= head for n in MEMBERS), 20, "replicas to catch up")
    digests = {n: status(n) for n in MEMBERS}
    by_seq = {}
    for s in digests.values():
        by_seq.setdefault(s["seq"], set()).add(s["digest"])
    assert all(len(d) == 1 for d in by_seq.values()), by_seq


def test_a_node_with_a_wrong_secret_is_rejected_and_changes_nothing(cluster, tmp_path):
    """S16 on Ray: an added member whose key is wrong gets JoinRejected(bad_credentials)."""
    from actors import messages as m
    from roster.ray_runtime.actors import ElmActor
    from roster.ray_runtime.node_actor import NodeActor
    from roster.ray_runtime.shell import NAMESPACE
    from tests.ray_helpers import TEST_SETTINGS

    leader = leader_of(MEMBERS)
    assert admin(leader, "add-node", node="n9").ok
    before = quorum_records()
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(b"0" * 64)
    data = str(cluster["data_dir"])
    elm = ElmActor.options(name=m.elm_addr("n9"), namespace=NAMESPACE).remote("n9", data, TEST_SETTINGS)
    impostor = NodeActor.options(name=m.node_addr("n9"), namespace=NAMESPACE).remote(
        "n9", cluster["desc"]["cluster_id"], str(wrong), TEST_SETTINGS, MEMBERS)
    ray.get(impostor.start.remote())
    rejected = wait_for(lambda: types_after(quorum_records(), before[-1].seq, "JoinRejected", "n9"), 30, "JoinRejected")
    assert rejected[0].event.reason == "bad_credentials"
    assert all((status(n) or {}).get("state") == "Online" for n in MEMBERS)
    assert not types_after(quorum_records(), before[-1].seq, "NodeJoined", "n9")
    ray.kill(impostor, no_restart=True)
    ray.kill(elm, no_restart=True)


def test_quorum_actor_killed_recovers_from_its_log_and_keeps_committing(cluster):
    """S7, invariant 2: the Quorum restarts from its durable log; commits go on."""
    from actors import messages as m
    from roster.ray_runtime.shell import NAMESPACE

    before = quorum_records()
    quorum = ray.get_actor(m.QUORUM, namespace=NAMESPACE)
    pid = ray.get(quorum.info.remote())["pid"]
    ray.kill(quorum, no_restart=False)
    wait_for(lambda: _quorum_pid() not in (None, pid), 60, "the quorum actor to restart")
    after = quorum_records()
    assert [r.hash for r in after[:len(before)]] == [r.hash for r in before]
    leader = wait_for(lambda: leader_of(MEMBERS), 30, "a leader")
    reply = wait_for(lambda: _ok(admin(leader, "group-create", group="web", preferred_owners=["n2"])), 60, "a commit")
    assert reply.seq > before[-1].seq


def _quorum_pid():
    from actors import messages as m
    from roster.ray_runtime.shell import NAMESPACE

    try:
        return ray.get(ray.get_actor(m.QUORUM, namespace=NAMESPACE).info.remote(), timeout=5)["pid"]
    except Exception:  # noqa: BLE001 - restarting
        return None


def _ok(reply):
    return reply if reply.ok or reply.status == 409 else None


def test_worker_removed_misses_then_one_regroup_then_its_group_moves(cluster):
    """S22 on Ray: a crashed worker → consecutive misses, one regroup, its group Online elsewhere."""
    leader = leader_of(MEMBERS)
    victim = next(n for n in MEMBERS if n != leader)
    reply = admin(leader, "group-move", group="web", node=victim)
    assert reply.ok or reply.status == 409, reply
    wait_for(lambda: (status(victim) or {}).get("running") == ["web"], 90, f"web to run on {victim}")
    start = quorum_records()[-1].seq
    cluster["cluster"].remove_node(cluster["workers"][victim], allow_graceful=False)
    cluster["removed"] = victim
    others = [n for n in MEMBERS if n != victim]
    wait_for(lambda: any("web" in (status(n) or {}).get("running", []) for n in others), 60, "web to fail over")
    records = quorum_records()
    misses = [r.event.count for r in types_after(records, start, "HeartbeatMissed", victim)]
    assert misses[-5:] == [1, 2, 3, 4, 5]  # (a late heartbeat before the crash may add an early 1)
    regroups = [r for r in types_after(records, start, "Regrouped") if victim in r.event.down]
    assert len(regroups) == 1


def test_worker_planned_leave_is_recorded_without_a_regroup(cluster):
    """S19, S21, S22 on Ray: ClusterExit → NodeExited, no regroup."""
    alive = [n for n in MEMBERS if n != cluster["removed"]]
    leader = leader_of(alive)
    follower = next(n for n in alive if n != leader)
    start = quorum_records()[-1].seq
    assert ray.get(node(follower).leave.remote(), timeout=30).ok
    wait_for(lambda: types_after(quorum_records(), start, "NodeExited", follower), 30, "NodeExited")
    records = quorum_records()
    assert not [r for r in types_after(records, start, "Regrouped") if follower in r.event.down]
    cluster["left"] = follower


def test_leader_node_removed_new_leader_higher_epoch_nothing_lost(cluster):
    """Leader failure on Ray: the removed worker comes back under its old id (the reconciler starts
    its Node + ELM there), then the leader's Ray node dies → the returned node takes over with a
    higher epoch; nothing acknowledged is lost and its replica is a prefix of the quorum log."""
    back = cluster["removed"]
    cluster["workers"][f"{back}-again"] = cluster["cluster"].add_node(**worker_args(back))
    wait_for(lambda: (status(back) or {}).get("state") == "Online" and (status(back) or {}).get("role") == "follower",
             90, f"{back} to rejoin on its new Ray node")
    old_leader = leader_of(MEMBERS)
    old_epoch = status(old_leader)["epoch"]
    acked = quorum_records()
    cluster["cluster"].remove_node(cluster["workers"][old_leader], allow_graceful=False)
    wait_for(lambda: (status(back) or {}).get("role") == "leader", 60, f"{back} to take over")
    assert status(back)["epoch"] > old_epoch
    records = quorum_records()
    assert [r.hash for r in records[:len(acked)]] == [r.hash for r in acked]  # nothing acknowledged lost
    replica = ray.get(ray.get_actor(f"elm:{back}", namespace="roster").records.remote(1))
    assert [r.hash for r in replica] == [r.hash for r in records[:len(replica)]]
