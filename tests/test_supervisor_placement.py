"""The Supervisor's choice of Ray node per Roster node (`plan_moves`), round by round as its
reconcile loop applies it: a Node + ELM run on one Ray node at a time, move only to a newer
Ray node, and never go back to one they left (the fix for the bimodal rejoin after a host
crash: the old raylet stays "alive" in `ray.nodes()` for ~15 s after the crash)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")
from roster.ray_runtime.supervisor import plan_moves  # noqa: E402


class Rounds:
    """What `Supervisor.reconcile` keeps between rounds: where each node runs, what it passed over."""

    def __init__(self) -> None:
        self.current: dict[str, str] = {}
        self.passed_over: set[str] = set()
        self.starts: list[tuple[str, str]] = []

    def round(self, alive: list[tuple[str, str]]) -> dict[str, str]:
        for node_id, (ray_node, passed) in sorted(plan_moves(alive, self.current, self.passed_over).items()):
            self.passed_over |= passed
            self.current[node_id] = ray_node
            self.starts.append((node_id, ray_node))
        return dict(self.current)


def test_nodes_start_once_each_and_then_stay():
    r = Rounds()
    alive = [("n1", "ray-a"), ("n2", "ray-b")]
    assert r.round(alive) == {"n1": "ray-a", "n2": "ray-b"}
    for _ in range(3):
        assert r.round(alive) == {"n1": "ray-a", "n2": "ray-b"}
    assert r.starts == [("n1", "ray-a"), ("n2", "ray-b")]


@pytest.mark.parametrize("old,new", [("ray-old", "ray-zzz-new"), ("ray-old", "ray-aaa-new")])
def test_a_host_back_before_ray_marks_its_old_raylet_dead_moves_once_to_the_new_one(old, new):
    """S13 on Ray: the crashed host's worker is added back under the same id while the old
    raylet is still listed alive; whatever the two Ray node ids' order, the Node moves to the
    new raylet once and never back (before the fix: back and forth, or stuck on the dead one)."""
    r = Rounds()
    r.round([("n1", "ray-a"), ("n2", old)])
    both = [("n1", "ray-a"), ("n2", old), ("n2", new)]
    for _ in range(5):  # Ray still calls the old raylet alive for a while
        assert r.round(both)["n2"] == new
    assert r.round([("n1", "ray-a"), ("n2", new)])["n2"] == new  # then it is marked dead
    assert [s for s in r.starts if s[0] == "n2"] == [("n2", old), ("n2", new)]


def test_a_host_whose_old_raylet_is_already_dead_moves_to_the_new_one():
    r = Rounds()
    r.round([("n1", "ray-a"), ("n2", "ray-b")])
    assert r.round([("n1", "ray-a")]) == {"n1": "ray-a", "n2": "ray-b"}  # down: nothing to start anywhere
    assert r.round([("n1", "ray-a"), ("n2", "ray-c")])["n2"] == "ray-c"
    assert "ray-b" in r.passed_over


def test_two_live_ray_nodes_claiming_one_id_do_not_make_it_flap():
    """A misconfiguration (two hosts with the same roster-node resource): one is chosen, the
    other passed over, and the Node stays where it started."""
    r = Rounds()
    both = [("n1", "ray-a"), ("n1", "ray-b")]
    for _ in range(4):
        assert r.round(both) == {"n1": "ray-a"}
    assert r.starts == [("n1", "ray-a")]


def test_a_third_raylet_after_two_crashes_is_still_newer():
    r = Rounds()
    r.round([("n2", "ray-1")])
    r.round([("n2", "ray-1"), ("n2", "ray-2")])
    assert r.round([("n2", "ray-1"), ("n2", "ray-2"), ("n2", "ray-3")])["n2"] == "ray-3"
    assert r.round([("n2", "ray-2"), ("n2", "ray-3")])["n2"] == "ray-3"
    assert [s[1] for s in r.starts] == ["ray-1", "ray-2", "ray-3"]
