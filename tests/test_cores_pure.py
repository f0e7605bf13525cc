"""The cores are sans-I/O (DESIGN §5), and the Quorum and EventLogManager cores, driven by hand.

1. Static rule: no module in actors/ or projections/ imports ray, aiohttp, asyncio, time, random,
   os, socket, threading, subprocess, pathlib or io, nor calls open().
2. QuorumCore: grant / deny / renew / release, fencing by epoch, conflict on a wrong
   expected_seq, idempotent retry by batch_id, durable-before-send ordering.
3. EventLogManagerCore: a gap asks the Quorum (ReadLog); duplicates are ignored; a record that
   does not chain raises ReplicaDiverged.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from actors import messages as m
from actors.effects import Persist, PersistOwnership, Send, SetAsideReplica, SetTimer
from actors.event_log_manager import EventLogManagerCore, ReplicaDiverged
from actors.auth import acquire_proof
from actors.quorum import QuorumCore
from actors.settings import ProtocolSettings
from events import types as ev
from events.codec import GENESIS_HASH, seal_all
from events.record import Draft, Record, draft

ROOT = Path(__file__).resolve().parent.parent
BANNED = {"ray", "aiohttp", "asyncio", "time", "random", "os", "socket", "threading", "subprocess", "pathlib", "io"}
CORE_PACKAGES = ("actors", "projections")


# --- 1. the sans-I/O rule -------------------------------------------------------------------------


def _core_modules() -> list[Path]:
    return sorted(p for pkg in CORE_PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def io_violations(source: str) -> list[str]:
    """Banned imports (also `from os import path`, `import os.path`, `__import__('os')`) and open() calls."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in BANNED]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] in BANNED:
                found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None
            if name == "open" and isinstance(fn, ast.Name):
                found.append(f"line {node.lineno}: open(...)")
            elif name in ("__import__", "import_module") and node.args and isinstance(node.args[0], ast.Constant) \
                    and str(node.args[0].value).split(".")[0] in BANNED:
                found.append(f"line {node.lineno}: dynamic import of {node.args[0].value}")
    return found


def test_the_checker_itself_sees_every_kind_of_violation():
    src = "import os\nimport os.path as p\nfrom time import monotonic\nimport asyncio, json\n" \
          "from . import random\nx = open('f')\ny = __import__('socket')\nz = Path('x').open()\n"
    found = io_violations(src)
    assert len(found) == 6, found  # relative `from . import random` and a method `.open()` are fine
    assert io_violations("from events.codec import dumps\nimport hashlib\nfrom datetime import datetime\n") == []


def test_there_are_core_modules_to_check():
    names = {p.relative_to(ROOT).as_posix() for p in _core_modules()}
    assert {"actors/node.py", "actors/quorum.py", "actors/event_log_manager.py", "actors/messages.py",
            "projections/config_db.py", "projections/membership.py"} <= names


@pytest.mark.parametrize("path", [
    pytest.param(p, id=p.relative_to(ROOT).as_posix()) for p in _core_modules()
])
def test_core_module_does_no_io(path: Path):
    """DESIGN §5: the cores take a message and the time and return effects; no I/O, no clock, no RNG."""
    assert io_violations(path.read_text()) == []


# --- shared fixtures ------------------------------------------------------------------------------

LEASE = 300
SETTINGS = ProtocolSettings(heartbeat_interval_ms=100, heartbeat_misses_before_regroup=5)


def creation(members=("n1", "n2", "n3"), by="n1") -> list[Draft]:
    return [draft(ev.ClusterCreated(cluster_id="c1", name="unit", secret_fingerprint="00"), by=by, node=by),
            draft(ev.QuorumConfigured(resource="quorum", lease_ms=LEASE), by=by),
            *[draft(ev.NodeAdded(), by=by, node=n) for n in members],
            draft(ev.QuorumAcquired(lease_ms=LEASE), by=by, node=by)]


def joined(node: str, sponsor: str = "n1") -> list[Draft]:
    return [draft(ev.JoinRequested(sponsor=sponsor, replica_seq=0), by=sponsor, node=node),
            draft(ev.NodeAuthenticated(sponsor=sponsor), by=sponsor, node=node),
            draft(ev.ConfigDbSynced(sponsor=sponsor, mode="delta", from_seq=1, to_seq=6), by=sponsor, node=node),
            draft(ev.NodeJoined(incarnation=1), by=sponsor, node=node)]


def group(name: str) -> Draft:
    return draft(ev.GroupCreated(group=name), by="n1")


def seal(drafts: list[Draft], after: list[Record] | None = None, epoch: int = 1) -> list[Record]:
    after = after or []
    return seal_all(drafts, first_seq=len(after) + 1, epoch=epoch, ts="2026-01-01T00:00:00.000Z",
                    prev_hash=after[-1].hash if after else GENESIS_HASH)


def sends(effects, kind=None, to=None) -> list:
    return [e.msg for e in effects if isinstance(e, Send) and (kind is None or isinstance(e.msg, kind))
            and (to is None or e.to == to)]


def only(effects, kind, to=None):
    found = sends(effects, kind, to)
    assert len(found) == 1, effects
    return found[0]


# --- 2. QuorumCore ---------------------------------------------------------------------------------


QUORUM_SECRET = b"quorum-test-secret"


def acquire(q: QuorumCore, node: str, now: int, secret: bytes = QUORUM_SECRET):
    proof = acquire_proof(secret, node, now)
    return q.step(m.AcquireQuorum(node=node, sent_at=now, proof=proof), now, m.node_addr(node))


def append(q: QuorumCore, node: str, epoch: int, expected: int, drafts, batch: str, now: int = 0):
    msg = m.AppendEntries(node=node, epoch=epoch, expected_seq=expected, drafts=tuple(drafts), batch_id=batch)
    return q.step(msg, now, m.elm_addr(node))


def formed_quorum(now: int = 0) -> QuorumCore:
    """A quorum whose log holds a created cluster (members n1..n3), owned by n1 in epoch 1."""
    q = QuorumCore(lease_ms=LEASE, secret=QUORUM_SECRET, now=now)
    assert isinstance(only(acquire(q, "n1", now), m.QuorumGranted), m.QuorumGranted)
    only(append(q, "n1", 1, 0, creation(), "b1", now), m.AppendAccepted)
    return q


def test_quorum_grants_an_empty_log_to_its_creator_durably_before_answering():
    q = QuorumCore(lease_ms=LEASE, secret=QUORUM_SECRET, now=0)
    out = acquire(q, "n1", 10)
    assert isinstance(out[0], PersistOwnership) and (out[0].epoch, out[0].owner) == (1, "n1")
    grant = only(out, m.QuorumGranted, to="node:n1")
    assert (grant.epoch, grant.lease_ms, grant.head_seq, grant.sent_at) == (1, LEASE, 0, 10)
    assert out.index(out[0]) < next(i for i, e in enumerate(out) if isinstance(e, Send))


def test_quorum_denies_while_held_and_grants_a_new_epoch_after_the_lease():
    q = formed_quorum(now=0)
    denied = only(acquire(q, "n2", LEASE - 1), m.QuorumDenied)
    assert (denied.owner, denied.epoch, denied.reason) == ("n1", 1, "held")
    grant = only(acquire(q, "n2", LEASE), m.QuorumGranted)
    assert grant.epoch == 2 and q.owner == "n2"


def test_quorum_denies_a_node_that_is_not_a_member():
    q = formed_quorum(now=0)
    denied = only(acquire(q, "x9", 10 * LEASE), m.QuorumDenied)
    assert denied.reason == "not a member" and q.owner == "n1" and q.epoch == 1


def test_quorum_renew_extends_the_lease_and_a_stale_epoch_loses_it():
    q = formed_quorum(now=0)
    renewed = only(q.step(m.RenewLease(node="n1", epoch=1, sent_at=200), 200, "node:n1"), m.LeaseRenewed)
    assert (renewed.epoch, renewed.sent_at) == (1, 200)
    assert only(acquire(q, "n2", LEASE + 100), m.QuorumDenied).reason == "held"  # 200 + LEASE > LEASE + 100
    lost = only(q.step(m.RenewLease(node="n1", epoch=0, sent_at=300), 300, "node:n1"), m.LeaseLost)
    assert (lost.epoch, lost.owner) == (1, "n1")
    assert only(q.step(m.RenewLease(node="n2", epoch=1, sent_at=300), 300, "node:n2"), m.LeaseLost).owner == "n1"
    assert only(acquire(q, "n2", 200 + LEASE), m.QuorumGranted).epoch == 2


def test_quorum_release_lets_another_node_take_over_at_once():
    q = formed_quorum(now=0)
    assert q.step(m.ReleaseQuorum(node="n2", epoch=1), 5, "node:n2") == []  # not the owner: ignored
    assert q.step(m.ReleaseQuorum(node="n1", epoch=0), 5, "node:n1") == []  # stale epoch: ignored
    assert q.owner == "n1"
    out = q.step(m.ReleaseQuorum(node="n1", epoch=1), 5, "node:n1")
    assert out == [PersistOwnership(1, None)] and q.owner is None
    assert only(acquire(q, "n2", 6), m.QuorumGranted).epoch == 2  # long before the lease would end


def test_quorum_owner_asking_again_while_held_is_denied_so_others_are_not_locked_out():
    """S8: a leader that lost its renewals' answers must not extend its own lease by asking again."""
    q = formed_quorum(now=0)
    assert only(acquire(q, "n1", 50), m.QuorumDenied).reason == "held"
    assert only(acquire(q, "n2", LEASE), m.QuorumGranted).epoch == 2


def test_quorum_unused_grant_gives_another_member_a_turn():
    q = formed_quorum(now=0)
    assert only(acquire(q, "n2", LEASE), m.QuorumGranted).epoch == 2  # n2 never renews nor appends
    assert only(acquire(q, "n2", 2 * LEASE + 1), m.QuorumDenied).reason == "your last grant was never used"
    assert only(acquire(q, "n3", 2 * LEASE + 2), m.QuorumGranted).epoch == 3


def test_quorum_refuses_a_wrong_key_and_a_replayed_proof():
    """S8b, S16: an impostor with a member's name but not the secret cannot take the quorum."""
    q = formed_quorum(now=0)
    assert only(acquire(q, "n2", 10 * LEASE, secret=b"wrong"), m.QuorumDenied).reason == "bad credentials"
    proof = acquire_proof(QUORUM_SECRET, "n2", 10 * LEASE)
    replay = m.AcquireQuorum(node="n2", sent_at=10 * LEASE, proof=proof)
    assert isinstance(only(q.step(replay, 10 * LEASE, "node:n2"), m.QuorumGranted), m.QuorumGranted)
    q.step(m.ReleaseQuorum(node="n2", epoch=2), 10 * LEASE + 1, "node:n2")
    assert only(q.step(replay, 10 * LEASE + 2, "node:n2"), m.QuorumDenied).reason == "bad credentials"


def test_quorum_reacquire_by_the_owner_bumps_the_epoch_and_fences_its_old_appends():
    q = formed_quorum(now=0)
    assert only(acquire(q, "n1", LEASE + 50), m.QuorumGranted).epoch == 2
    refused = only(append(q, "n1", 1, q.head_seq, [group("g")], "b2"), m.AppendRefused)
    assert refused.reason == "fenced" and refused.epoch == 2


def test_quorum_fences_appends_from_a_deposed_owner_and_from_non_owners():
    q = formed_quorum(now=0)
    only(acquire(q, "n2", LEASE), m.QuorumGranted)  # n1's lease ran out: epoch 2 belongs to n2
    head = q.head_seq
    old = only(append(q, "n1", 1, head, [group("late")], "n1-late"), m.AppendRefused)
    assert (old.reason, old.epoch, old.head_seq) == ("fenced", 2, head)
    assert only(append(q, "n1", 2, head, [group("spoof")], "n1-spoof"), m.AppendRefused).reason == "fenced"
    assert q.head_seq == head and all(r.epoch == 1 for r in q.records)


def test_quorum_refuses_an_append_at_the_wrong_seq_as_a_conflict():
    q = formed_quorum(now=0)
    head = q.head_seq
    for expected in (head - 1, head + 1):
        refused = only(append(q, "n1", 1, expected, [group("g")], f"b-{expected}"), m.AppendRefused)
        assert (refused.reason, refused.head_seq) == ("conflict", head)
    assert q.head_seq == head


def test_quorum_append_is_durable_before_acknowledged_and_chains():
    q = formed_quorum(now=0)
    out = append(q, "n1", 1, q.head_seq, [group("g1"), group("g2")], "b2", now=1234)
    assert isinstance(out[0], Persist) and isinstance(out[1], Send)
    acc = only(out, m.AppendAccepted, to="elm:n1")
    assert out[0].records == acc.records
    assert [r.seq for r in acc.records] == [7, 8] and {r.epoch for r in acc.records} == {1}
    assert acc.records[0].ts == "1970-01-01T00:00:01.234Z"
    assert q.records[-1] == acc.records[-1] and q.head_hash == acc.records[-1].hash
    assert "g1" in q.state.config.groups


def test_quorum_retry_of_the_same_batch_is_answered_idempotently():
    q = formed_quorum(now=0)
    head = q.head_seq
    first = only(append(q, "n1", 1, head, [group("g")], "b2"), m.AppendAccepted)
    retry_out = append(q, "n1", 1, head, [group("g")], "b2")  # the answer was lost; same batch id
    assert not any(isinstance(e, Persist) for e in retry_out)
    assert only(retry_out, m.AppendAccepted).records == first.records
    assert q.head_seq == head + 1
    # A different batch at the stale expected_seq is a conflict, not a duplicate.
    assert only(append(q, "n1", 1, head, [group("g")], "b3"), m.AppendRefused).reason == "conflict"


def test_quorum_reads_in_chunks_and_restarts_from_its_durable_state():
    q = formed_quorum(now=0)
    rng = only(q.step(m.ReadLog(from_seq=2, reply_to="elm:n1", max_records=3), 0, "elm:n1"), m.LogRange, to="elm:n1")
    assert [r.seq for r in rng.records] == [2, 3, 4] and rng.head_seq == q.head_seq
    restarted = QuorumCore(lease_ms=LEASE, secret=QUORUM_SECRET, records=list(q.records), epoch=q.epoch, owner=q.owner, now=10_000)
    assert restarted.head_seq == q.head_seq and restarted.head_hash == q.head_hash
    # After a restart nobody knows when the owner last renewed: a full lease must pass first.
    assert only(acquire(restarted, "n2", 10_000 + LEASE - 1), m.QuorumDenied).reason == "held"
    assert only(acquire(restarted, "n2", 10_000 + LEASE), m.QuorumGranted).epoch == q.epoch + 1


# --- 3. EventLogManagerCore --------------------------------------------------------------------------


def history() -> list[Record]:
    """Created (n1..n3), n1 formed, n2 joined; n3 was added but never joined. Then two groups."""
    return seal(creation() + joined("n2") + [group("g1"), group("g2")])


def test_elm_loads_and_verifies_its_replica():
    recs = history()
    elm = EventLogManagerCore("n2", SETTINGS, recs)
    assert elm.head_seq == len(recs) and elm.head_hash == recs[-1].hash and elm.state.seq == len(recs)
    broken = list(recs)
    broken[3] = seal([group("evil")], after=recs[:3])[0]  # a record 4 from another history
    with pytest.raises(ReplicaDiverged):
        EventLogManagerCore("n2", SETTINGS, broken)


def test_elm_gap_asks_the_quorum_for_the_missing_range():
    full = history()
    elm = EventLogManagerCore("n2", SETTINGS, full[:5])
    out = elm.step(m.Replicate(records=tuple(full[7:9])), 100, "elm:n1")
    assert elm.head_seq == 5  # nothing applied across the gap
    read = only(out, m.ReadLog, to=m.QUORUM)
    assert (read.from_seq, read.reply_to) == (6, "elm:n2")
    assert any(isinstance(e, SetTimer) for e in out)
    assert elm.step(m.Replicate(records=tuple(full[8:10])), 101, "elm:n1") == []  # already reading: no second ask
    out = elm.step(m.LogRange(records=tuple(full[5:]), head_seq=len(full)), 102, m.QUORUM)
    assert elm.head_seq == len(full)
    persisted = [e for e in out if isinstance(e, Persist)]
    assert len(persisted) == 1 and [r.seq for r in persisted[0].records] == list(range(6, len(full) + 1))
    committed = only(out, m.Committed, to="node:n2")
    assert committed.records == persisted[0].records and committed.batch_id is None
    assert out.index(persisted[0]) < next(i for i, e in enumerate(out) if isinstance(e, Send))


def test_elm_ignores_duplicate_records():
    recs = history()
    elm = EventLogManagerCore("n2", SETTINGS, recs)
    assert elm.step(m.Replicate(records=tuple(recs[-3:])), 100, "elm:n1") == []
    assert elm.step(m.LogRange(records=tuple(recs), head_seq=len(recs)), 100, m.QUORUM) == []
    assert elm.head_seq == len(recs)
    # a batch that overlaps the head applies only its new part
    more = seal([group("g3")], after=recs)
    out = elm.step(m.Replicate(records=tuple(recs[-1:] + more)), 101, "elm:n1")
    assert [r.seq for r in only(out, m.Committed).records] == [len(recs) + 1]


def test_elm_record_that_does_not_chain_raises_replica_diverged():
    recs = history()
    elm = EventLogManagerCore("n2", SETTINGS, recs)
    other = seal(creation() + [group("x")] * (len(recs) - len(creation())))  # same length, another history
    assert len(other) == len(recs)
    forged = seal([group("g3")], after=other)  # seq head+1, chained onto the other history
    with pytest.raises(ReplicaDiverged):
        elm.step(m.Replicate(records=tuple(forged)), 100, "elm:n1")
    with pytest.raises(ReplicaDiverged):  # a record we hold, with another hash
        elm.step(m.Replicate(records=(other[-1],)), 100, "elm:n1")
    assert elm.head_seq == len(recs)


def test_elm_proposal_goes_to_the_quorum_then_commits_and_replicates_to_joined_members():
    recs = history()
    elm = EventLogManagerCore("n1", SETTINGS, recs)
    drafts = (group("g3"),)
    out = elm.step(m.Propose(epoch=1, drafts=drafts, batch_id="n1:1:1"), 100, "node:n1")
    req = only(out, m.AppendEntries, to=m.QUORUM)
    assert (req.epoch, req.expected_seq, req.batch_id, req.drafts) == (1, len(recs), "n1:1:1", drafts)
    # one batch in flight: a second proposal waits
    assert sends(elm.step(m.Propose(epoch=1, drafts=(group("g4"),), batch_id="n1:1:2"), 101, "node:n1")) == []
    sealed = tuple(seal(list(drafts), after=recs))
    out = elm.step(m.AppendAccepted(batch_id="n1:1:1", records=sealed), 102, m.QUORUM)
    assert only(out, m.Committed, to="node:n1").batch_id == "n1:1:1"
    assert {e.to for e in out if isinstance(e, Send) and isinstance(e.msg, m.Replicate)} == {"elm:n2"}  # n3 never joined
    nxt = only(out, m.AppendEntries, to=m.QUORUM)
    assert (nxt.batch_id, nxt.expected_seq) == ("n1:1:2", len(recs) + 1)


def test_elm_refused_append_fails_every_queued_proposal_and_fetches_the_head():
    recs = history()
    elm = EventLogManagerCore("n1", SETTINGS, recs)
    elm.step(m.Propose(epoch=1, drafts=(group("a"),), batch_id="b1"), 100, "node:n1")
    elm.step(m.Propose(epoch=1, drafts=(group("b"),), batch_id="b2"), 100, "node:n1")
    out = elm.step(m.AppendRefused(batch_id="b1", reason="fenced", epoch=2, head_seq=len(recs) + 4), 101, m.QUORUM)
    failed = sends(out, m.ProposalFailed, to="node:n1")
    assert [(f.batch_id, f.reason, f.epoch) for f in failed] == [("b1", "fenced", 2), ("b2", "fenced", 2)]
    assert only(out, m.ReadLog, to=m.QUORUM).from_seq == len(recs) + 1
    assert elm.step(m.AppendRefused(batch_id="b1", reason="fenced", epoch=2, head_seq=0), 102, m.QUORUM) == []


def test_elm_append_retry_resends_the_same_batch():
    recs = history()
    elm = EventLogManagerCore("n1", SETTINGS, recs)
    first = only(elm.step(m.Propose(epoch=1, drafts=(group("a"),), batch_id="b1"), 100, "node:n1"), m.AppendEntries)
    again = only(elm.step(m.TimerFired(key="append-retry"), 100 + SETTINGS.append_retry_after_ms, "elm:n1"),
                 m.AppendEntries)
    assert again == first


def test_elm_sync_for_a_joiner_none_delta_or_full():
    """S17 on the sponsor's side: same head -> none; a prefix -> the tail; another history -> all."""
    recs = history()
    elm = EventLogManagerCore("n1", SETTINGS, recs)

    def sync(seq, h):
        out = elm.step(m.SendSync(joiner="n3", their_seq=seq, their_hash=h, seen_incarnation=0), 100, "node:n1")
        return only(out, m.ReplicaSync, to="elm:n3"), only(out, m.SyncSent, to="node:n1")

    rs, sent = sync(len(recs), recs[-1].hash)
    assert (rs.mode, rs.records, sent.mode) == ("none", (), "none")
    rs, sent = sync(4, recs[3].hash)
    assert rs.mode == "delta" and [r.seq for r in rs.records] == list(range(5, len(recs) + 1))
    assert (sent.from_seq, sent.to_seq, sent.their_seq) == (5, len(recs), 4)
    rs, sent = sync(3, "ff" * 16)
    assert rs.mode == "full" and rs.records == tuple(recs) and sent.from_seq == 1
    rs, _ = sync(len(recs) + 5, "ff" * 16)  # longer than ours: cannot be our prefix
    assert rs.mode == "full"


def test_elm_full_copy_of_another_history_sets_the_old_one_aside():
    recs = history()
    mine = seal(creation() + [group("mine")])
    elm = EventLogManagerCore("n3", SETTINGS, mine)
    out = elm.step(m.ReplicaSync(sponsor="n1", mode="full", records=tuple(recs)), 100, "elm:n1")
    assert isinstance(out[0], SetAsideReplica)  # before anything replaces it
    assert isinstance(out[1], Persist) and [r.seq for r in out[1].records] == list(range(1, len(recs) + 1))
    committed = only(out, m.Committed, to="node:n3")
    assert committed.replaced and committed.records == tuple(recs)
    assert elm.head_hash == recs[-1].hash
    # a full copy that merely extends ours is applied as a tail, nothing set aside
    elm2 = EventLogManagerCore("n3", SETTINGS, recs[:6])
    out = elm2.step(m.ReplicaSync(sponsor="n1", mode="full", records=tuple(recs)), 100, "elm:n1")
    assert not any(isinstance(e, SetAsideReplica) for e in out)
    assert not only(out, m.Committed).replaced and elm2.head_seq == len(recs)


def test_a_node_that_missed_a_batch_from_its_elm_asks_for_it_again():
    """Invariant 3 between a node and its own ELM: a Committed batch lost between them (a node
    actor that was not ready yet) leaves no gap in the node's view: it asks `ResendFrom`."""
    from actors.node import NodeCore, NodeIdentity

    records = seal(creation())
    elm = EventLogManagerCore("n2", ProtocolSettings(), records)
    node = NodeCore(NodeIdentity("n2", "c", b"k" * 32, ("n1",)), ProtocolSettings(), entropy=b"e" * 16,
                    records=records[:3])
    asked = only(node.step(m.Committed(records=tuple(records[5:])), 0, "elm:n2"), m.ResendFrom, to="elm:n2")
    assert asked.from_seq == 4 and node.view.seq == 3
    resent = only(elm.step(asked, 0, "node:n2"), m.Committed, to="node:n2")
    node.step(resent, 0, "elm:n2")
    assert node.view.seq == len(records) and node.view.digest() == elm.state.digest()


def test_elm_rebuild_from_a_snapshot_plus_tail_equals_a_full_fold():
    """Invariant 3: snapshot + tail gives the same state as folding everything; a snapshot that
    does not match the log (other hash) is not used."""
    from projections import state as proj
    from projections.state import ClusterState

    records = seal(creation() + joined("n2") + [group("web"), group("db")])
    full = EventLogManagerCore("n1", ProtocolSettings(), records)
    snap = proj.fold(ClusterState(), records[:5])
    from_snapshot = EventLogManagerCore("n1", ProtocolSettings(), records, snap)
    assert from_snapshot.state.digest() == full.state.digest() and from_snapshot.head_seq == len(records)
    foreign = proj.fold(ClusterState(), seal(creation(members=("x1",)))[:5])
    ignored = EventLogManagerCore("n1", ProtocolSettings(), records, foreign)
    assert ignored.state.digest() == full.state.digest()
