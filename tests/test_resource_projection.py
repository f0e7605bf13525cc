"""Resource events fold into the config DB (ordered specs, failover policy) and the
ResourcesView (state, owner, restarts, last failure, endpoint); invariant 3 (equal seq ⇒
equal digest) holds through snapshots (`to_dict`/`from_dict`)."""

from __future__ import annotations

from pathlib import Path

from events.resource_spec import FailoverPolicy, ResourceSpec
from events import codec
from events import types as ev
from events.record import draft
from projections.state import ClusterState, fold
from roster.logdir import LogReader

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"
GOLDEN_PREFIX_SEQ = 60  # the golden log as first written, before the resource tail was appended
GOLDEN_PREFIX_DIGEST = "4b514a8ca247db49966970a078f3f969:35318864b8ee80874896dfffb8c536e3"

WEB = ResourceSpec(name="web", type="process", params={"argv": ["x"], "port": 8080})
DB = ResourceSpec(name="db", type="process", params={"argv": ["y"]})


def records(*events, after: ClusterState | None = None):
    """The events sealed as the records that follow `after` (default: the empty log)."""
    head = after or ClusterState()
    drafts = [draft(e, by="n1", node=getattr(e, "node", None)) for e in events]
    return codec.seal_all(drafts, first_seq=head.seq + 1, epoch=1, ts="2024-01-01T00:00:00.000Z",
                          prev_hash=head.hash)


def base():
    return (ev.GroupCreated(group="g", preferred_owners=("n1", "n2")), ev.ResourceAdded(group="g", spec=DB),
            ev.ResourceAdded(group="g", spec=WEB))


def test_invariant3_golden_prefix_without_resource_events_keeps_its_digest():
    reader = LogReader(GOLDEN)
    state = fold(ClusterState(), reader.iter_records(1, GOLDEN_PREFIX_SEQ))
    assert state.resources.is_empty() and "resources" not in state.to_dict()
    assert state.digest() == GOLDEN_PREFIX_DIGEST


def test_config_keeps_declaration_order_and_change_in_place():
    s = fold(ClusterState(), records(*base(), ev.ResourceChanged(group="g", spec=DB.model_copy(update={"stop_timeout_ms": 5})),
                                     ev.GroupPolicyChanged(group="g", failover=FailoverPolicy(threshold=2))))
    g = s.config.groups["g"]
    assert [r.name for r in g.resources] == ["db", "web"]
    assert g.resource("db").stop_timeout_ms == 5 and g.failover.threshold == 2
    s2 = fold(s, records(ev.ResourceRemoved(group="g", resource="db"), after=s))
    assert [r.name for r in s2.config.groups["g"].resources] == ["web"]


def test_runtime_online_failed_restarted_counts_and_endpoint():
    s = fold(ClusterState(), records(
        *base(), ev.GroupMoved(group="g", from_node=None, to_node="n1", reason="placed"),
        ev.ResourceOnline(group="g", resource="web", node="n1", attempt=0, endpoint="127.0.0.1:8080"),
    ))
    assert s.resources.endpoint_of("g") == "127.0.0.1:8080"
    assert s.resources.resources[("g", "db")].state == "Starting"
    s = fold(s, records(ev.ResourceFailed(group="g", resource="web", node="n1", attempt=0, phase="run",
                                          reason="exited", exit_code=-9),
                        ev.ResourceRestarted(group="g", resource="web", node="n1", attempt=1), after=s))
    web = s.resources.resources[("g", "web")]
    assert (web.state, web.owner, web.attempt, web.restarts, web.endpoint) == ("Starting", "n1", 1, 1, None)
    assert (web.last_failure.phase, web.last_failure.exit_code, web.last_failure.seq) == ("run", -9, 6)


def test_runtime_move_clears_endpoints_and_old_owner_offline_is_ignored():
    s = fold(ClusterState(), records(
        *base(), ev.GroupMoved(group="g", from_node=None, to_node="n1", reason="placed"),
        ev.ResourceOnline(group="g", resource="web", node="n1", attempt=0, endpoint="h:1"),
        ev.GroupMoved(group="g", from_node="n1", to_node="n2", reason="failover"),
        ev.ResourceOffline(group="g", resource="web", node="n1", reason="stopped"),
    ))
    web = s.resources.resources[("g", "web")]
    assert (web.state, web.owner, web.endpoint) == ("Starting", "n2", None)
    assert s.resources.endpoint_of("g") is None


def test_runtime_group_failed_and_deleted():
    s = fold(ClusterState(), records(
        *base(), ev.GroupMoved(group="g", from_node=None, to_node="n1", reason="placed"),
        ev.ResourceOnline(group="g", resource="web", node="n1", attempt=0, endpoint="h:1"),
        ev.GroupStateChanged(group="g", state="Failed", reason="failover threshold"),
    ))
    assert {r.state for r in s.resources.of_group("g")} == {"Offline"} and s.resources.endpoint_of("g") is None
    s = fold(s, records(ev.GroupDeleted(group="g"), after=s))
    assert s.resources.is_empty() and "g" not in s.config.groups


def test_invariant3_snapshot_round_trip_keeps_the_digest():
    s = fold(ClusterState(), records(
        *base(), ev.GroupPolicyChanged(group="g", failover=FailoverPolicy(threshold=1)),
        ev.GroupMoved(group="g", from_node=None, to_node="n1", reason="placed"),
        ev.ResourceFailed(group="g", resource="db", node="n1", attempt=0, phase="start", reason="no such file"),
    ))
    back = ClusterState.from_dict(codec.loads(codec.dumps(s.to_dict())))
    assert back.digest() == s.digest() and back.to_dict() == s.to_dict()
    assert s.digest().count(":") == 2  # the resources view is part of the digest once it holds anything
