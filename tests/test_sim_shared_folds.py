"""The simulator's scale aids change no run (issue 11).

- Shared folds (`roster.sim.shared_folds`, used by bench/bench_scale.py): replicas take the
  state of an identical prefix from whoever folded it first. A run with them must be the same
  run as one where every replica folds for itself: same steps, messages, quorum log, every
  replica's records, and every ELM state and Node view equal to its own fold (invariant 3).
- `check_chain`'s memo on a Record: a verdict for one previous hash only, never carried
  across a pickle.
"""

from __future__ import annotations

import pickle

import pytest

from actors.node import CreateSpec
from actors.settings import ProtocolSettings
from events import types as ev
from events.codec import GENESIS_HASH, check_chain, seal_all
from events.record import draft
from projections import state as proj
from projections.state import ClusterState
from roster.sim.scenario import FAULT_KINDS, Scenario, SimOptions
from roster.sim.shared_folds import SharedFolds
from roster.sim.world import World

TS = "2026-01-01T00:00:00Z"


def _world_outcome(w: World) -> dict:
    quorum = [r.hash for r in w.qdisk.records]
    servers = {}
    for s in w.servers.values():
        own_fold = proj.fold(ClusterState(), s.replica).digest()
        elm = s.elm.state.digest() if s.up and s.elm is not None else None
        view = s.node.view.digest() if s.up and s.node is not None else None
        servers[s.node_id] = ([r.hash for r in s.replica], own_fold, elm, view, s.node.role if s.node else None)
    return {"steps": w.steps, "messages": w.messages, "quorum": quorum, "servers": servers}


def _scale_world(share: bool, size: int, minutes: float) -> World:
    """bench/bench_scale.py's run: a cluster created, every other node joining in the first 20 s."""
    w = World(seed=size, settings=ProtocolSettings(), share_folds=share)
    ids = [f"n{i}" for i in range(1, size + 1)]
    for n in ids:
        w.add_server(n)
    w.start_quorum()
    w.start_server("n1", create=CreateSpec("scale", "scale", tuple(ids)))
    for n in ids[1:]:
        w.schedule(w.rng.randint(100, 20_000), lambda n=n: w.start_server(n))
    w.run_until(int(minutes * 60_000))
    return w


def test_shared_folds_change_no_scale_run() -> None:
    """Invariant 3: the bench_scale setup at 30 nodes, shared against unshared, byte for byte."""
    shared, own = _scale_world(True, 30, 1.0), _scale_world(False, 30, 1.0)
    assert isinstance(shared.folds, SharedFolds) and shared.folds.shared > 0  # it did share
    a, b = _world_outcome(shared), _world_outcome(own)
    assert a == b
    for s in a["servers"].values():
        assert s[2] in (None, s[1]) and s[3] in (None, s[1])  # each state is its replica's own fold
    assert len(a["quorum"]) > 30


@pytest.mark.parametrize("seed,nodes,options", [
    (100_000, 5, "swarm"), (100_001, 5, "swarm"), (100_002, 5, "swarm"), (3, 7, "swarm"),
    (1, 5, "classic"), (2, 5, "classic"),
])
def test_shared_folds_change_no_faulty_run(seed: int, nodes: int, options: str) -> None:
    """Invariants 2, 3: with crashes, partitions, torn writes and full resyncs (S17) too."""
    opts = SimOptions.from_seed(seed) if options == "swarm" else SimOptions.classic(FAULT_KINDS)
    runs = []
    for share in (True, False):
        sc = Scenario(seed, nodes, opts, 20_000, share_folds=share)
        r = sc.run()
        runs.append((r.ok, r.events, r.messages, r.steps, _world_outcome(sc.world)))
    assert runs[0] == runs[1]
    assert runs[0][0], "the run itself must hold every invariant"


def test_shared_folds_refuse_a_batch_that_does_not_extend_the_state() -> None:
    folds = SharedFolds()
    records = seal_all([draft(ev.QuorumReleased(), by="n1")] * 3, first_seq=1, epoch=1, ts=TS, prev_hash=GENESIS_HASH)
    state = folds.advance(ClusterState(), records[:1])
    with pytest.raises(AssertionError):
        folds.advance(state, records[2:])


def test_check_chain_memo_is_per_previous_hash_and_not_pickled() -> None:
    (r,) = seal_all([draft(ev.QuorumReleased(), by="n1")], first_seq=1, epoch=1, ts=TS, prev_hash=GENESIS_HASH)
    assert check_chain(GENESIS_HASH, r) and r.chained_to == GENESIS_HASH
    assert not check_chain("00" * 32, r)  # another previous hash is computed, not remembered
    assert r.chained_to == GENESIS_HASH
    copy = pickle.loads(pickle.dumps(r))
    assert copy == r and copy.chained_to is None  # the receiver verifies for itself
    forged = pickle.loads(pickle.dumps(r))
    forged.hash = "ff" * 32
    assert not check_chain(GENESIS_HASH, forged) and forged.chained_to is None
