"""The Node core's step table, one role at a time, without the simulator.

Each test puts a `NodeCore` into a role through the same messages the shells deliver, then
hands it one message and checks what it decides. Test names carry the requirement (S…) or
invariant they cover, so `pytest -k S15` finds the join tests.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from actors import admin
from actors import messages as m
from actors.auth import join_mac
from actors.effects import Send, SetTimer, StopGroup
from actors.node import KNOWN_MESSAGES, STEP, TICK, TIMERS, NodeCore, NodeIdentity, Role, Timer
from actors.node_state import STOPPED_ROLES
from actors.settings import ProtocolSettings
from events import types as ev
from events.record import draft
from projections import state as proj
from projections.state import ClusterState
from tests.test_cores_pure import creation, group, joined, only, seal, sends

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ProtocolSettings()
SECRET = b"s" * 32
T0 = 1_000_000


def _node(node_id: str, records, peers=("n1", "n2", "n3")) -> NodeCore:
    ident = NodeIdentity(node_id, "c1", SECRET, peers)
    return NodeCore(ident, SETTINGS, entropy=b"e" * 16, records=list(records))


def follower(now: int = T0) -> tuple[NodeCore, list]:
    """n2, admitted by leader n1 (epoch 1): a FOLLOWER that has sent its first heartbeat."""
    base = seal(creation())
    node = _node("n2", base)
    node.start(now)
    admitted = seal(joined("n2"), after=base)
    node.step(m.Committed(records=tuple(admitted)), now, "elm:n2")
    assert node.role == Role.FOLLOWER and node.leader == "n1"
    return node, base + admitted


def ack(node: NodeCore, sent_at: int, now: int) -> list:
    return node.step(m.HeartbeatAck(leader="n1", epoch=1, committed_seq=node.view.seq, sent_at=sent_at), now, "node:n1")


# --- the table itself --------------------------------------------------------------------------------
def test_every_live_role_has_a_step_a_tick_and_timers() -> None:
    live = set(Role) - STOPPED_ROLES
    assert set(STEP) == live and set(TICK) == live and set(TIMERS) == live
    assert all(m.TimerFired in STEP[r] and m.Committed in STEP[r] for r in live)


def test_a_message_the_role_has_no_entry_for_is_ignored_in_one_place() -> None:
    node, _ = follower()
    assert m.JoinApproved not in STEP[Role.FOLLOWER]
    out = node.step(m.JoinApproved(joiner="n3", sponsor="n2", mode="none", from_seq=0, to_seq=0, their_seq=0, seen_incarnation=0),
                    T0 + 1, "node:n3")
    assert out == [] and node.role == Role.FOLLOWER


def test_a_message_no_role_knows_is_a_bug() -> None:
    node, _ = follower()
    assert m.Propose not in KNOWN_MESSAGES
    with pytest.raises(TypeError):
        node.step(m.Propose(epoch=1, drafts=(), batch_id="x"), T0, "elm:n2")


def test_timer_keys_are_typed() -> None:
    node, _ = follower()
    out = node.step(m.TimerFired(key=Timer.TICK), T0 + 1000, "node:n2")
    assert any(isinstance(e, SetTimer) and e.key == Timer.TICK for e in out)
    with pytest.raises(ValueError):
        node.step(m.TimerFired(key="no-such-timer"), T0, "node:n2")


# --- FOLLOWER ------------------------------------------------------------------------------------------
def test_S8c_follower_runs_its_groups_only_while_the_leaders_acks_are_fresh() -> None:
    node, records = follower()
    placed = seal([group("web"), draft(ev.GroupMoved(group="web", from_node=None, to_node="n2", reason="placed"),
                                       by="n1")], after=records)
    node.step(m.Committed(records=tuple(placed)), T0, "elm:n2")
    assert "web" not in node.running  # no ack yet: no contact, nothing runs
    ack(node, sent_at=T0, now=T0 + 5)
    assert node.running == {"web"}
    out = node.step(m.TimerFired(key=Timer.CONTACT), T0 + SETTINGS.detection_ms, "node:n2")
    assert StopGroup("web") in out and node.running == set()


def test_S8c_follower_that_hears_no_leader_fences_itself_and_asks_the_quorum() -> None:
    node, _ = follower()
    out = node.step(m.TimerFired(key=Timer.TICK), T0 + SETTINGS.detection_ms, "node:n2")
    assert node.role == Role.SEARCHING and node.fenced
    assert only(out, m.AcquireQuorum, to=m.QUORUM).node == "n2"
    assert only(out, m.Heartbeat, to="node:n1").fenced


def test_S22_follower_answers_a_regroup_poll_and_drops_one_from_an_older_epoch() -> None:
    node, _ = follower()
    out = node.step(m.RegroupPoll(leader="n1", epoch=1, round=4), T0 + 1, "node:n1")
    assert only(out, m.RegroupAck, to="node:n1").round == 4
    node.epoch = 3
    assert sends(node.step(m.RegroupPoll(leader="n1", epoch=1, round=5), T0 + 2, "node:n1")) == []


def test_S13_follower_told_it_is_not_a_member_rejoins() -> None:
    node, _ = follower()
    out = node.step(m.NotMember(leader="n1", epoch=1), T0 + 1, "node:n1")
    assert node.role == Role.JOINING and sends(out, m.Discover)


def test_S21_follower_hearing_its_leader_leave_asks_for_the_quorum_at_once() -> None:
    node, _ = follower()
    out = node.step(m.ClusterExit(node="n1", epoch=1), T0 + 1, "node:n1")
    assert node.role == Role.SEARCHING and only(out, m.AcquireQuorum)


def test_S22_follower_relays_another_members_exit_to_the_leader_once() -> None:
    node, _ = follower()
    relayed = only(node.step(m.ClusterExit(node="n3", epoch=1), T0 + 1, "node:n3"), m.ClusterExit, to="node:n1")
    assert relayed.forwarded and node.role == Role.FOLLOWER
    assert sends(node.step(relayed, T0 + 2, "node:n3"), m.ClusterExit) == []  # never relayed twice


def test_follower_forwards_admin_commands_to_the_leader_a_bounded_number_of_times() -> None:
    node, _ = follower()
    cmd = m.AdminCommand(op="pause", args={"node": "n3"}, request_id="r1", reply_to="client")
    assert only(node.step(cmd, T0, "client"), m.AdminCommand, to="node:n1").hops == 1
    worn = cmd.model_copy(update={"hops": 3})
    assert only(node.step(worn, T0, "client"), m.AdminReply, to="client").error == "no_leader"


# --- the sponsor side (a follower sponsoring a joiner) ----------------------------------------------------
def test_S15_a_follower_sponsors_a_joiner_challenge_then_sync() -> None:
    node, _ = follower()
    reply = only(node.step(m.Discover(node="n3", cluster_id="c1"), T0, "node:n3"), m.DiscoverReply, to="node:n3")
    assert reply.member == "n2"
    req = m.JoinRequest(node="n3", cluster_id="c1", replica_seq=0, replica_hash="0" * 32, seen_incarnation=0)
    challenge = only(node.step(req, T0, "node:n3"), m.JoinChallenge, to="node:n3")
    mac = join_mac(SECRET, challenge.nonce, "n3", "c1")
    sync = only(node.step(m.JoinResponse(node="n3", mac=mac, nonce=challenge.nonce), T0, "node:n3"),
                m.SendSync, to="elm:n2")
    assert sync.joiner == "n3" and sync.their_seq == 0


def test_S15_S16_a_duplicated_join_request_gets_the_same_challenge_and_no_false_rejection() -> None:
    """Issue 13.3: a duplicated JoinRequest used to overwrite the pending nonce, so the answer
    to the first challenge failed the MAC and a correctly configured node was refused."""
    node, _ = follower()
    req = m.JoinRequest(node="n3", cluster_id="c1", replica_seq=0, replica_hash="0" * 32, seen_incarnation=0)
    first = only(node.step(req, T0, "node:n3"), m.JoinChallenge, to="node:n3")
    again = only(node.step(req, T0 + 1, "node:n3"), m.JoinChallenge, to="node:n3")
    assert again.nonce == first.nonce  # idempotent per request while pending
    mac = join_mac(SECRET, first.nonce, "n3", "c1")
    out = node.step(m.JoinResponse(node="n3", mac=mac, nonce=first.nonce), T0 + 2, "node:n3")
    assert only(out, m.SendSync, to="elm:n2").joiner == "n3" and not sends(out, m.JoinRefused)
    # The duplicate answer (to a challenge no longer pending) is dropped, not refused.
    assert node.step(m.JoinResponse(node="n3", mac=mac, nonce=first.nonce), T0 + 3, "node:n3") == []


def test_S16_an_answer_to_a_stale_nonce_is_dropped_not_a_rejection() -> None:
    """Issue 13.3: a new request (a newer replica) gets a new nonce; the old answer is stale."""
    node, _ = follower()
    old = only(node.step(m.JoinRequest(node="n3", cluster_id="c1", replica_seq=0, replica_hash="0" * 32, seen_incarnation=0),
                         T0, "node:n3"), m.JoinChallenge)
    new = only(node.step(m.JoinRequest(node="n3", cluster_id="c1", replica_seq=4, replica_hash="1" * 32, seen_incarnation=0),
                         T0 + 1, "node:n3"), m.JoinChallenge)
    assert new.nonce != old.nonce
    stale = m.JoinResponse(node="n3", mac=join_mac(SECRET, old.nonce, "n3", "c1"), nonce=old.nonce)
    assert node.step(stale, T0 + 2, "node:n3") == []
    fresh = m.JoinResponse(node="n3", mac=join_mac(SECRET, new.nonce, "n3", "c1"), nonce=new.nonce)
    assert only(node.step(fresh, T0 + 3, "node:n3"), m.SendSync).their_seq == 4


def test_S16_a_bad_mac_is_refused_and_the_rejection_goes_to_the_leader_as_a_draft() -> None:
    node, _ = follower()
    req = m.JoinRequest(node="n3", cluster_id="c1", replica_seq=0, replica_hash="0" * 32, seen_incarnation=0)
    challenge = only(node.step(req, T0, "node:n3"), m.JoinChallenge)
    out = node.step(m.JoinResponse(node="n3", mac="00" * 32, nonce=challenge.nonce), T0, "node:n3")
    assert only(out, m.JoinRefused, to="node:n3").reason == "bad_credentials"
    forwarded = only(out, m.ForwardDrafts, to="node:n1")
    assert forwarded.drafts[0].event.type == "JoinRejected"


def test_S15_a_joiner_from_another_cluster_is_refused() -> None:
    node, _ = follower()
    assert sends(node.step(m.Discover(node="x", cluster_id="other"), T0, "node:x")) == []
    req = m.JoinRequest(node="x", cluster_id="other", replica_seq=0, replica_hash="0" * 32, seen_incarnation=0)
    assert only(node.step(req, T0, "node:x"), m.JoinRefused).reason == "wrong_cluster"


# --- JOINING / REJECTED ---------------------------------------------------------------------------------
def joiner() -> NodeCore:
    node = _node("n3", seal(creation()))
    out = node.start(T0)
    assert node.role == Role.JOINING and {s.node for s in sends(out, m.Discover)} == {"n3"}
    return node


def test_S15_the_first_member_that_answers_is_the_sponsor() -> None:
    node = joiner()
    req = only(node.step(m.DiscoverReply(member="n2", leader="n1", epoch=1), T0 + 1, "node:n2"),
               m.JoinRequest, to="node:n2")
    assert req.replica_seq == node.view.seq
    assert sends(node.step(m.DiscoverReply(member="n1", leader="n1", epoch=1), T0 + 2, "node:n1")) == []
    # a challenge from anyone but the sponsor is not answered
    assert sends(node.step(m.JoinChallenge(sponsor="n1", nonce="abc"), T0 + 3, "node:n1")) == []
    resp = only(node.step(m.JoinChallenge(sponsor="n2", nonce="abc"), T0 + 3, "node:n2"), m.JoinResponse)
    assert resp.mac == join_mac(SECRET, "abc", "n3", "c1")


def test_S16_a_refused_joiner_waits_out_its_back_off_then_joins_again() -> None:
    node = joiner()
    node.step(m.DiscoverReply(member="n2", leader="n1", epoch=1), T0 + 1, "node:n2")
    node.step(m.JoinRefused(sponsor="n2", reason="unknown_member"), T0 + 2, "node:n2")
    assert node.role == Role.REJECTED
    assert sends(node.step(m.TimerFired(key=Timer.TICK), T0 + 3, "node:n3")) == []
    later = T0 + 2 + SETTINGS.rejection_backoff_ms
    out = node.step(m.TimerFired(key=Timer.TICK), later, "node:n3")
    assert node.role == Role.JOINING and sends(out, m.Discover)


def test_S5_nobody_answers_discovery_so_the_joiner_asks_the_quorum() -> None:
    node = joiner()
    out = node.step(m.TimerFired(key=Timer.DISCOVERY), T0 + SETTINGS.discovery_ms, "node:n3")
    assert node.role == Role.FORMING and only(out, m.AcquireQuorum, to=m.QUORUM)


# --- LEADER ---------------------------------------------------------------------------------------------
def leader() -> tuple[NodeCore, list]:
    """n1 granted the quorum (epoch 2) over a log where n2 joined; caught up: LEADER."""
    records = seal(creation())
    records += seal(joined("n2"), after=records)
    node = _node("n1", records)
    node.start(T0)
    node.step(m.QuorumGranted(epoch=2, lease_ms=SETTINGS.lease_ms, head_seq=len(records), sent_at=T0), T0, "quorum")
    assert node.role == Role.TAKING_OVER
    node.step(m.CaughtUp(head_seq=len(records)), T0, "elm:n1")
    assert node.role == Role.LEADER
    return node, records


def _approved(seen_incarnation: int) -> m.JoinApproved:
    return m.JoinApproved(joiner="n2", sponsor="n1", mode="delta", from_seq=5, to_seq=9, their_seq=4,
                          seen_incarnation=seen_incarnation)


def test_invariant5_a_member_admitted_but_never_told_that_asks_again_is_not_admitted_twice() -> None:
    """Classic seeds 175, 295, 409, 471: n2's NodeJoined (incarnation 1) committed, but n2 never
    heard (its replica still shows incarnation 0); it asked again through a sponsor. The sync
    carries its admission: a second NodeJoined would admit one join twice."""
    node, _ = leader()
    node.step(_approved(seen_incarnation=0), T0 + 5, "node:n1")
    assert not [d for d in _pending(node) if d.event.type in ("JoinRequested", "NodeJoined")]


def test_S13_a_member_that_saw_its_admission_and_joins_again_is_admitted_anew() -> None:
    """A restarted process (its replica shows incarnation 1, as the leader's view does) is a new
    join: a new incarnation."""
    node, _ = leader()
    node.step(_approved(seen_incarnation=1), T0 + 5, "node:n1")
    joined_again = [d.event.incarnation for d in _pending(node) if d.event.type == "NodeJoined"]
    assert joined_again == [2]


def test_S22_the_leader_acks_a_members_heartbeat_with_its_committed_seq() -> None:
    node, records = leader()
    hb = m.Heartbeat(node="n2", epoch=2, applied_seq=len(records), sent_at=T0 + 7)
    a = only(node.step(hb, T0 + 10, "node:n2"), m.HeartbeatAck, to="node:n2")
    assert a.sent_at == T0 + 7 and a.epoch == 2 and a.committed_seq == node.view.seq


def test_S8c_the_leader_answers_a_fenced_heartbeat_with_not_member() -> None:
    node, records = leader()
    hb = m.Heartbeat(node="n2", epoch=2, applied_seq=len(records), sent_at=T0, fenced=True)
    assert only(node.step(hb, T0 + 1, "node:n2"), m.NotMember, to="node:n2").leader == "n1"


def test_invariant1_a_leader_that_hears_a_newer_epoch_steps_down() -> None:
    node, records = leader()
    node.step(m.Heartbeat(node="n2", epoch=5, applied_seq=len(records), sent_at=T0), T0 + 1, "node:n2")
    assert node.role == Role.SEARCHING


def test_S22_the_leader_counts_misses_as_bounded_events() -> None:
    node, _ = leader()
    lead = node.lead
    due = T0 + SETTINGS.interval_ms + SETTINGS.grace_ms
    # one interval without a heartbeat is not yet a miss: it must be overdue by the grace
    node.step(m.TimerFired(key=Timer.MISSES), due - 1, "node:n1")
    pending = [*(lead.inflight.drafts if lead.inflight else ()), *lead.outbox]
    assert not [d for d in pending if d.event.type == "HeartbeatMissed"]
    node.step(m.TimerFired(key=Timer.MISSES), due, "node:n1")
    pending = [*(lead.inflight.drafts if lead.inflight else ()), *lead.outbox]
    missed = [(d.node, d.event.count) for d in pending if d.event.type == "HeartbeatMissed"]
    assert missed == [("n2", 1)]
    # the same instant again: not a second miss (a miss is counted once per interval)
    node.step(m.TimerFired(key=Timer.MISSES), due, "node:n1")
    pending = [*(lead.inflight.drafts if lead.inflight else ()), *lead.outbox]
    assert sum(d.event.type == "HeartbeatMissed" for d in pending) == 1


def _pending(node: NodeCore) -> list:
    lead = node.lead
    return [*(lead.inflight.drafts if lead.inflight else ()), *lead.outbox]


def _commit_inflight(node: NodeCore, records: list) -> list:
    """The leader's batch in flight commits (at its epoch): its ELM reports it."""
    inflight = node.lead.inflight
    assert inflight is not None
    sealed = seal(list(inflight.drafts), after=records, epoch=node.epoch)
    node.step(m.Committed(records=tuple(sealed), batch_id=inflight.batch_id), T0 + 1, "elm:n1")
    return records + sealed


def _cmd(op: str, request_id: str, **args) -> m.AdminCommand:
    return m.AdminCommand(op=op, args=args, request_id=request_id, reply_to="client")


def test_S8c_the_leader_does_not_ack_a_heartbeat_once_its_lease_has_passed() -> None:
    """Issue 13.5: an ack after the lease would extend a follower's contact on a lease the
    leader no longer holds."""
    node, records = leader()
    lease_until = node.lead.lease_until
    hb = m.Heartbeat(node="n2", epoch=2, applied_seq=len(records), sent_at=lease_until - 1)
    assert only(node.step(hb, lease_until - 1, "node:n2"), m.HeartbeatAck)  # inside the lease: acked
    out = node.step(hb, lease_until, "node:n2")
    assert sends(out, m.HeartbeatAck) == [] and node.role == Role.SEARCHING


def test_invariant2_step_down_tells_the_batch_in_flight_outcome_unknown_and_the_rest_failed() -> None:
    """Issue 13.2: the batch in flight may already be in the quorum log, so its clients are told
    the outcome is unknown (with the request id, which its events carry); commands not yet
    proposed did not happen."""
    node, records = leader()
    node.step(_cmd("pause", "r1", node="n2"), T0 + 1, "client")
    records = _commit_inflight(node, records)  # QuorumAcquired commits; the pause goes out
    assert [(d.event.type, d.event.request_id) for d in node.lead.inflight.drafts] == [("NodePaused", "r1")]
    node.step(_cmd("group-create", "r2", group="web"), T0 + 2, "client")  # waits in the outbox
    out = node.step(m.LeaseLost(epoch=2, owner="n3"), T0 + 3, "quorum")
    replies = {r.request_id: r for r in sends(out, m.AdminReply)}
    assert node.role == Role.SEARCHING
    assert (replies["r1"].ok, replies["r1"].status, replies["r1"].error) == (False, 504, "outcome_unknown")
    assert "r1" in replies["r1"].detail
    assert (replies["r2"].ok, replies["r2"].status, replies["r2"].error) == (False, 503, "leader_changed")


def test_invariant2_a_new_leader_answers_a_retry_from_the_log_instead_of_running_it_twice() -> None:
    """Issue 13.2: duplicate detection is rebuilt from the log (request ids in the events)."""
    base = seal(creation())
    base += seal(joined("n2"), after=base)
    base += seal([draft(ev.NodePaused(request_id="r1"), by="n1", node="n2")], after=base)
    base += seal([draft(ev.NodeResumed(request_id="r2"), by="n1", node="n2")], after=base)
    node = _node("n1", base)
    node.start(T0)
    node.step(m.QuorumGranted(epoch=2, lease_ms=SETTINGS.lease_ms, head_seq=len(base), sent_at=T0), T0, "quorum")
    node.step(m.CaughtUp(head_seq=len(base)), T0, "elm:n1")
    out = node.step(_cmd("pause", "r1", node="n2"), T0 + 1, "client")
    reply = only(out, m.AdminReply, to="client")
    assert reply.ok and reply.seq == len(base) - 1  # the seq of its own record
    assert not [d for d in _pending(node) if d.event.type == "NodePaused"]  # not run a second time


def _group_on_n2(preferred=("n2",)) -> list:
    records = seal(creation())
    records += seal(joined("n2"), after=records)
    records += seal(joined("n3"), after=records)
    return records + seal([draft(ev.GroupCreated(group="web", preferred_owners=preferred), by="n1"),
                           draft(ev.GroupMoved(group="web", from_node=None, to_node="n2", reason="placed"),
                                 by="n1")], after=records)


def test_invariant4_a_move_release_names_its_target_and_the_202_case_logs_it_too() -> None:
    """Issue 13.1: an acknowledged move is an event, in both cases."""
    view = proj.fold(ClusterState(), _group_on_n2())
    move = _cmd("group-move", "r1", group="web", node="n3")
    now = admin.decide(view, move, leader="n1", stopped=lambda *_: True)
    assert [(d.event.type, d.event.state, d.event.moving_to) for d in now.drafts] == [
        ("GroupStateChanged", "Offline", "n3")]
    released = proj.fold(view, seal(list(now.drafts), after=_group_on_n2()))
    assert released.membership.groups["web"].moving_to == "n3"  # folded: a new leader sees it
    later = admin.decide(released, _cmd("group-move", "r2", group="web", node="n1"), leader="n1",
                         stopped=lambda *_: False)
    assert later.reply is None and later.status == 202  # answered once the intent is logged
    assert [d.event.moving_to for d in later.drafts] == ["n1"]


def test_invariant4_a_new_leader_finishes_a_move_the_old_one_acknowledged() -> None:
    """Issue 13.1: the old leader released web (on n2) to move it to n3 and crashed before
    placing it; the new leader places it on n3, not back on its preferred owner n2."""
    records = _group_on_n2()
    records += seal([draft(ev.GroupStateChanged(group="web", state="Offline", reason="admin move to n3",
                                                moving_to="n3", request_id="r1"), by="n1")], after=records)
    node = _node("n1", records)
    node.start(T0)
    node.step(m.QuorumGranted(epoch=2, lease_ms=SETTINGS.lease_ms, head_seq=len(records), sent_at=T0), T0, "quorum")
    node.step(m.CaughtUp(head_seq=len(records)), T0, "elm:n1")
    records = _commit_inflight(node, records)
    for n in ("n2", "n3"):  # both applied the release: n2 provably stopped web
        node.step(m.Heartbeat(node=n, epoch=2, applied_seq=len(records), sent_at=T0 + 2), T0 + 2, f"node:{n}")
    moved = [d.event for d in _pending(node) if d.event.type == "GroupMoved"]
    assert [(e.group, e.to_node) for e in moved] == [("web", "n3")]


def test_S8c_a_follower_taking_over_keeps_its_groups_running_on_its_leader_contact() -> None:
    """Issue 13.4: TAKING_OVER used to give no groups, so a follower that took over stopped and
    restarted its own groups."""
    node, records = follower()
    placed = seal([group("web"), draft(ev.GroupMoved(group="web", from_node=None, to_node="n2", reason="placed"),
                                       by="n1")], after=records)
    node.step(m.Committed(records=tuple(placed)), T0, "elm:n2")
    ack(node, sent_at=T0, now=T0 + 5)
    assert node.running == {"web"}
    node.step(m.ClusterExit(node="n1", epoch=1), T0 + 6, "node:n1")  # the leader left: take over
    out = node.step(m.QuorumGranted(epoch=2, lease_ms=SETTINGS.lease_ms, head_seq=len(records) + 2,
                                    sent_at=T0 + 6), T0 + 7, "quorum")
    assert node.role == Role.TAKING_OVER and node.running == {"web"} and StopGroup("web") not in out
    out = node.step(m.TimerFired(key=Timer.CONTACT), T0 + SETTINGS.detection_ms, "node:n2")
    assert StopGroup("web") in out  # no longer than the contact it had as a follower


def test_S21_a_leaving_node_stops_its_groups_before_it_tells_anyone() -> None:
    """Issue 13.6: the leader takes a ClusterExit as proof the groups stopped, so every stop
    comes before the first ClusterExit in the effects (shells carry them out in order)."""
    node, records = follower()
    placed = seal([group("web"), draft(ev.GroupMoved(group="web", from_node=None, to_node="n2", reason="placed"),
                                       by="n1")], after=records)
    node.step(m.Committed(records=tuple(placed)), T0, "elm:n2")
    ack(node, sent_at=T0, now=T0 + 5)
    out = node.step(_cmd("leave", "r1"), T0 + 6, "client")
    kinds = [type(e).__name__ if not isinstance(e, Send) else type(e.msg).__name__ for e in out]
    assert "StopGroup" in kinds and "ClusterExit" in kinds and node.role == Role.EXITED
    assert kinds.index("StopGroup") < kinds.index("ClusterExit")


# --- admin decisions are pure ---------------------------------------------------------------------------
def test_admin_decisions_are_pure_functions_of_view_and_command() -> None:
    records = seal(creation())
    records += seal(joined("n2"), after=records)
    view = proj.fold(ClusterState(), records)
    before = view.digest()
    cmd = m.AdminCommand(op="pause", args={"node": "n2", "drain": True}, request_id="r", reply_to="c")
    a = admin.decide(view, cmd, leader="n1", stopped=lambda *_: True)
    b = admin.decide(view, cmd, leader="n1", stopped=lambda *_: True)
    assert a == b and a.reply is None and [d.event.type for d in a.drafts] == ["NodePaused"]
    assert view.digest() == before
    bad = admin.decide(view, cmd.model_copy(update={"args": {"node": "zz"}}), leader="n1", stopped=lambda *_: True)
    assert bad.reply is not None and bad.reply.status == 404 and not bad.drafts


# --- structure ---------------------------------------------------------------------------------------------
def _module_imports(path: Path, package: str) -> set[str]:
    """`package.*` modules imported anywhere in the file (TYPE_CHECKING blocks and imports inside
    functions count too: a cycle is a cycle)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == package)
    return found


def _import_graph(package: str) -> dict[str, set[str]]:
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in (ROOT / package).rglob("*.py")}
    modules = {k.removesuffix(".__init__"): v for k, v in modules.items()}
    packages = {k for k, v in modules.items() if v.name == "__init__.py"}
    return {name: {d for d in _module_imports(path, package) if d in modules and d != name and d not in packages}
            for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(n: str, trail: list[str]) -> list[str] | None:
        state[n] = 1
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                return [*trail, n, d]
            if d not in state and (found := visit(d, [*trail, n])):
                return found
        state[n] = 2
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name, [])):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("package", ["actors", "roster"])
def test_no_import_circle(package: str) -> None:
    graph = _import_graph(package)
    assert len(graph) > 5
    found = _cycle(graph)
    assert found is None, "import circle: " + " -> ".join(found or [])
