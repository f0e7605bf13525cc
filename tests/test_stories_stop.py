"""Issue 12 §2 in the simulator: a planned stop of the whole cluster (`stop-cluster`, what
`roster down` and Ctrl-C of `roster up` send first) takes each group offline once, with reason
"cluster stopping", and no leave after it moves a group; the next start places them again."""

from __future__ import annotations

from tests.sim_helpers import build_sim, create_and_join
from tests.test_stories import _group

IDS = ["n1", "n2", "n3"]
SETTLE_MS = 3_000


def test_issue12_whole_cluster_stop_moves_no_group_and_the_next_start_places_them():
    sim = build_sim(IDS)
    create_and_join(sim)
    for g, o in (("web", "n2"), ("db", "n3")):
        _group(sim, g, owners=[o])
    seq0 = len(sim.world.qdisk.records)
    sim.admin_ok(sim.leader(), "stop-cluster")
    again = sim.admin_ok(sim.leader(), "stop-cluster")  # twice: nothing more to do
    assert again.detail == "the cluster is already stopping"
    for n in sorted(IDS, key=lambda n: n == sim.leader()):  # followers first, the leader last
        sim.admin_ok(n, "leave")
        sim.until(lambda n=n: not sim.world.servers[n].up, SETTLE_MS, what=f"{n} gone")
    after = sim.world.qdisk.records[seq0:]
    assert [r.event.type for r in after].count("ClusterStopping") == 1
    assert not [r for r in after if r.event.type == "GroupMoved"]
    offline = [(r.event.group, r.event.reason) for r in after if r.event.type == "GroupStateChanged"]
    assert sorted(offline) == [("db", "cluster stopping"), ("web", "cluster stopping")]
    assert {r.node for r in after if r.event.type == "NodeExited"} == set(IDS)
    assert not [r for r in after if r.event.type == "Regrouped"]  # planned: no regroup (S21)

    for n in IDS:  # the next start: groups placed by their policies again
        sim.world.start_server(n)
    # (on the first node back: failback is off and the others are not members yet)
    sim.until(lambda: all(sim.owner(g) for g in ("web", "db")), 3 * SETTLE_MS, what="groups placed again")
    assert not sim.state().membership.stopping
