"""Projections: property tests of DESIGN §3 / invariant 3, and the semantics of S9–S12."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import codec
from events import types as ev
from events.record import Draft
from projections import config_db, membership
from projections.state import ClusterState, evolve, fold
from roster.history_gen import HistoryBuilder, make_history
from tests.strategies import event_sequences, histories, seal, seal_after

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fold_one_by_one(records) -> ClusterState:
    state = ClusterState()
    for r in records:
        state = evolve(state, r)
    return state


# --- invariant 3: equal seq => equal projection digest -------------------------------------


@PROPERTY_SETTINGS
@given(records=histories(), cut=st.floats(min_value=0, max_value=1))
def test_invariant_3_incremental_fold_equals_full_rebuild_equals_snapshot_plus_tail(records, cut):
    full = fold(ClusterState(), records)
    incremental = _fold_one_by_one(records)
    at = int(cut * len(records))
    snap = fold(ClusterState(), records[:at])
    restored = ClusterState.from_dict(codec.loads(codec.dumps(snap.to_dict())))  # through bytes, as on disk
    assert restored.digest() == snap.digest()
    from_snapshot = fold(restored, records[at:])
    assert incremental.to_dict() == full.to_dict() == from_snapshot.to_dict()
    assert incremental.digest() == full.digest() == from_snapshot.digest()
    assert full.seq == len(records) and full.hash == records[-1].hash


@PROPERTY_SETTINGS
@given(records=histories(), cut=st.floats(min_value=0, max_value=1))
def test_invariant_3_same_prefix_same_digest_on_every_replica(records, cut):
    """Two replicas that received the same prefix through the codec hold byte-identical state."""
    at = int(cut * len(records))
    here = fold(ClusterState(), records[:at])
    there = fold(ClusterState(), [codec.decode(codec.encode(r)) for r in records[:at]])
    assert here.digest() == there.digest()
    assert codec.dumps(here.to_dict(), sort_keys=True) == codec.dumps(there.to_dict(), sort_keys=True)


@PROPERTY_SETTINGS
@given(records=histories(min_events=2))
def test_evolve_does_not_mutate_its_input(records):
    before = fold(ClusterState(), records[:-1])
    frozen = codec.dumps(before.to_dict(), sort_keys=True)
    after = evolve(before, records[-1])
    cfg_after = config_db.evolve(before.config, records[-1])
    view_after = membership.evolve(before.membership, records[-1])
    assert codec.dumps(before.to_dict(), sort_keys=True) == frozen
    assert after.seq == cfg_after.seq == view_after.seq == before.seq + 1


@PROPERTY_SETTINGS
@given(drafts=event_sequences(max_events=10))
def test_generated_histories_start_with_creation(drafts):
    kinds = [d.event.type for d in drafts]
    assert kinds[:2] == ["ClusterCreated", "QuorumConfigured"][: len(kinds)]
    assert kinds[2] == "NodeAdded"


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), n_nodes=st.integers(min_value=1, max_value=6))
def test_invariant_4_holds_after_every_generated_action(seed, n_nodes):
    """The generator is plausible: after each action a group's owner is an Online or Paused member."""
    builder = HistoryBuilder(random.Random(seed), n_nodes)
    builder.create()
    boundaries = [builder.seq]
    while builder.seq < 150:
        builder.step()
        boundaries.append(builder.seq)
    records = seal(builder.drafts)
    state, done = ClusterState(), 0
    for end in boundaries:
        state = fold(state, records[done:end])
        done = end
        for g in state.membership.groups.values():
            assert g.owner is None or state.membership.is_full_member(g.owner), (g, end)
            assert g.owner is None or state.config.is_member(g.owner)


def test_make_history_is_deterministic():
    a, b = make_history(300, seed=5), make_history(300, seed=5)
    assert [r.hash for r in a] == [r.hash for r in b]
    assert make_history(300, seed=6)[-1].hash != a[-1].hash
    assert all(x.ts < y.ts for x, y in zip(a, a[1:]))


# --- semantics of single events (S9–S12, S16, S20) -------------------------------------------


def _cluster(*extra: Draft) -> ClusterState:
    base = [
        Draft(None, "n1", ev.ClusterCreated(cluster_id="c1", name="c", secret_fingerprint="fp", settings={"a": 1})),
        Draft(None, "n1", ev.QuorumConfigured(resource="disk", lease_ms=3000)),
        Draft("n1", "n1", ev.NodeAdded(address="10.0.0.1:7400")),
        Draft("n2", "n1", ev.NodeAdded(address="10.0.0.2:7400")),
        Draft("n1", "n1", ev.QuorumAcquired(lease_ms=3000)),
        Draft("n2", "n1", ev.JoinRequested(sponsor="n1", replica_seq=0)),
        Draft("n2", "n1", ev.NodeAuthenticated(sponsor="n1")),
        Draft("n2", "n1", ev.ConfigDbSynced(sponsor="n1", mode="full", from_seq=0, to_seq=6)),
        Draft("n2", "n1", ev.NodeJoined(incarnation=1)),
        Draft(None, "n1", ev.GroupCreated(group="g", preferred_owners=("n2",))),
        Draft(None, "n1", ev.GroupMoved(group="g", from_node=None, to_node="n2", reason="placed")),
    ]
    return fold(ClusterState(), seal(base + list(extra)))


def _node(state: ClusterState, node: str):
    return state.membership.nodes[node]


def test_s11_node_joined_is_online_and_quorum_acquired_sets_leader_and_epoch():
    s = _cluster()
    assert _node(s, "n2").state == "Online" and _node(s, "n2").incarnation == 1
    assert s.membership.leader == "n1" and s.membership.epoch == 1
    assert _node(s, "n1").state == "Online"  # S5: forming makes the owner a member
    assert s.membership.groups["g"].owner == "n2" and s.membership.groups_of("n2") == ["g"]


def test_s12_paused_keeps_its_groups_and_resume_is_online():
    s = _cluster(Draft("n2", "n1", ev.NodePaused()))
    assert _node(s, "n2").state == "Paused" and s.membership.groups["g"].owner == "n2"
    assert s.membership.is_full_member("n2")
    s = fold(s, seal_after(s, Draft("n2", "n1", ev.NodeResumed())))
    assert _node(s, "n2").state == "Online"


def test_s19_node_exited_is_offline():
    s = _cluster(Draft("n2", "n1", ev.NodeExited()))
    assert _node(s, "n2").state == "Offline" and "ClusterExit" in _node(s, "n2").reason
    assert s.config.is_member("n2")  # a planned leave keeps membership in the config


def test_s20_evicted_leaves_the_member_list_and_returns_only_when_added_again():
    s = _cluster(Draft("n2", "n1", ev.NodeEvicted(reason="admin")))
    assert not s.config.is_member("n2") and "n2" in s.config.evicted
    assert _node(s, "n2").evicted and _node(s, "n2").state == "Offline"
    s = fold(s, seal_after(s, Draft("n2", "n1", ev.NodeAdded(address="10.0.0.2:7400"))))
    assert s.config.is_member("n2") and "n2" not in s.config.evicted and not _node(s, "n2").evicted


def test_group_moved_sets_owner_and_to_nowhere_is_offline():
    s = _cluster(Draft(None, "n1", ev.GroupMoved(group="g", from_node="n2", to_node="n1", reason="admin")))
    assert s.membership.groups["g"].owner == "n1" and s.membership.groups["g"].state == "Online"
    s = fold(s, seal_after(s, Draft(None, "n1", ev.GroupMoved(group="g", from_node="n1", to_node=None, reason="x"))))
    assert s.membership.groups["g"].owner is None and s.membership.groups["g"].state == "Offline"


def test_s16_join_rejected_changes_nothing_but_the_version():
    s = _cluster()
    after = fold(s, seal_after(s, Draft("x9", "n1", ev.JoinRejected(sponsor="n1", reason="unknown_member"))))
    a, b = s.to_dict(), after.to_dict()
    for d in (a, b):
        d.pop("seq"), d.pop("hash"), d["config"].pop("version")
        for k in ("seq", "hash", "ts"):
            d["membership"].pop(k)
    assert a == b


def test_apply_out_of_order_is_refused():
    records = seal(_cluster_drafts_minimal())
    with pytest.raises(AssertionError):
        fold(ClusterState(), records[1:])


def _cluster_drafts_minimal() -> list[Draft]:
    return [Draft(None, "n1", ev.ClusterCreated(cluster_id="c", name="c", secret_fingerprint="f")),
            Draft(None, "n1", ev.QuorumConfigured(resource="d", lease_ms=1))]
