"""Invariant 4's policy half (issue 10 §6, `roster/sim/policy_check.py`): the checks can fail
(crafted histories), and the swarm seeds that found real bugs replay clean."""

from __future__ import annotations

import pytest

from events import types as ev
from events.record import Record
from events.resource_spec import FailoverPolicy
from projections import state as proj
from projections.state import ClusterState
from roster.sim.options import SimOptions
from roster.sim.policy_check import PolicyCheck
from roster.sim.scenario import run_seed

SWEEP_DURATION_MS = 20_000


def feed(events: list[tuple[str, ev.Event]]) -> PolicyCheck:
    """Fold (ts, event) records into a state and a check, as the checker does with the quorum log."""
    check, state = PolicyCheck(), ClusterState()
    for seq, (ts, e) in enumerate(events, start=1):
        r = Record(seq, 1, f"2024-01-01T00:00:{ts}Z", None, "n1", e, f"{seq:032x}")
        proj.apply_in_place(state, [r])
        check.record(r, state)
    return check


def group(threshold: int) -> list[tuple[str, ev.Event]]:
    return [("00.000", ev.GroupCreated(group="g")),
            ("00.000", ev.GroupPolicyChanged(group="g", failover=FailoverPolicy(threshold=threshold, period_ms=60_000)))]


def exhausted(node: str) -> ev.Event:
    return ev.ResourceFailed(group="g", resource="r", node=node, attempt=0, phase="run", reason="exited",
                             restarts_exhausted=True)


def placed(node: str, reason: str = "placed") -> ev.Event:
    return ev.GroupMoved(group="g", from_node=None, to_node=node, reason=reason)


def test_issue10_a_placement_past_the_failover_threshold_is_a_violation():
    ok = feed(group(1) + [("01.000", exhausted("n1")), ("01.100", placed("n2"))])
    assert ok.violations == []
    bad = feed(group(1) + [("01.000", exhausted("n1")), ("01.100", placed("n2")),
                           ("02.000", exhausted("n2")), ("02.100", placed("n3"))])
    assert len(bad.violations) == 1 and "after 2 failovers" in bad.violations[0]


def test_issue10_a_failed_group_stays_offline_until_an_admin_acts():
    failed = group(0) + [("01.000", exhausted("n1")),
                         ("01.100", ev.GroupStateChanged(group="g", state="Failed", reason="failed over"))]
    assert "Failed group g placed" in feed(failed + [("02.000", placed("n2"))]).violations[0]
    assert feed(failed + [("02.000", ev.GroupOnlineRequested(group="g")), ("02.100", placed("n2"))]).violations == []
    assert feed(failed + [("02.000", placed("n2", "admin move"))]).violations == []


@pytest.mark.parametrize("failures, threshold, bad", [(1, 1, False), (2, 1, True), (3, 3, False), (1, 0, True)])
def test_issue10_a_restart_in_place_past_the_restart_threshold_is_a_violation(failures, threshold, bad):
    check, key = PolicyCheck(), ("n1", "g", "r")
    check.resource_started(key, 0, threshold, 10_000, 0)
    for i in range(failures):
        check.resource_failed(key, 100 + i)
        if i < failures - 1:  # restarted after every failure but the last
            check.resource_started(key, i + 1, threshold, 10_000, 150 + i)
    check.resource_started(key, failures, threshold, 10_000, 1_000)
    assert bool(check.violations) == bad, check.violations


def test_issue10_failures_outside_the_restart_period_do_not_count():
    check, key = PolicyCheck(), ("n1", "g", "r")
    check.resource_started(key, 0, 1, 1_000, 0)
    check.resource_failed(key, 100)
    check.resource_started(key, 1, 1, 1_000, 200)
    check.resource_failed(key, 5_000)  # the first is out of the 1 s window by now
    check.resource_started(key, 2, 1, 1_000, 5_100)
    assert check.violations == []


@pytest.mark.parametrize("seed, found", [
    (100023, "failback ping-pong: a group moved back to the node it had just run out of restarts on"),
    (100195, "an admin move of a Failed group kept its failover count: failback re-placed it past the threshold"),
    (100169, "a stop answered by no ResourceStopped (the sim host) left a resource 'stopping' forever"),
])
def test_issue10_swarm_regressions(seed, found):
    r = run_seed(seed, 5, SimOptions.from_seed(seed), SWEEP_DURATION_MS)
    assert r.ok, f"{found}: {r.violation} — replay: roster simulate --seed {seed} --nodes 5 --duration 20"
