"""The three Ray actors: thin shells over `QuorumCore`, `EventLogManagerCore`, `NodeCore`.

Names in namespace `roster`: `quorum`, `elm:<id>`, `node:<id>`. Control-plane actors take
`num_cpus=0`. Each keeps its durable state under the data dir on its own Ray node.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import ray

from actors import messages as m
from actors.effects import Persist, PersistOwnership, SetAsideReplica
from actors.event_log_manager import EventLogManagerCore
from actors.quorum import QuorumCore
from actors.settings import ProtocolSettings
from events import snapshot_store
from events.log import EventLog
from projections.state import ClusterState
from roster.datadir import read_secret
from roster.latency import LatencyHistogram
from roster.ray_runtime.shell import EffectRunner, now_ms, wall_ms


def _import_node_actor() -> None:
    """Load the NodeActor class into this process now, at its start: Ray imports an actor's
    module the first time a process makes a handle to one, and this module's first message to
    a node would otherwise wait for that import (≈ 0.2–0.3 s: aiohttp, the HTTP app), e.g. an
    ELM's first Committed to its rejoining node (measured in bench_ray.py's join part)."""
    import roster.ray_runtime.node_actor  # noqa: F401


log = logging.getLogger("roster.actors")


def timed_append(log_: EventLog, records: list, hist: LatencyHistogram) -> None:
    """Append durably (the log fsyncs before it returns) and record how long that took."""
    started = time.perf_counter()
    log_.append_records(records)
    hist.observe(time.perf_counter() - started)


def _write_json_durably(path: Path, body: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(body, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@ray.remote(num_cpus=0)
class QuorumActor:
    """The quorum resource: its log and its ownership record live on the head node's disk."""

    def __init__(self, data_dir: str, settings: dict[str, Any]) -> None:
        _import_node_actor()
        self.dir = Path(data_dir) / "quorum"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = EventLog.open(self.dir / "log")
        self.owner_file = self.dir / "ownership.json"
        owner = json.loads(self.owner_file.read_text()) if self.owner_file.exists() else {"epoch": 0, "owner": None}
        s = ProtocolSettings(**settings)
        secret = read_secret(Path(data_dir) / "secret.key")  # to check acquire proofs (S8b)
        self.core = QuorumCore(lease_ms=s.lease_ms, secret=secret, records=list(self.log.iter_from(1)),
                               epoch=owner["epoch"], owner=owner["owner"], now=now_ms(), wall_ms=wall_ms)
        self.shell = EffectRunner("quorum", self.core.step, persist=self._persist)
        self.append_hist = LatencyHistogram()  # read by the leader's /metrics (log="quorum")

    def _persist(self, e: Any) -> None:
        if isinstance(e, Persist):
            timed_append(self.log, list(e.records), self.append_hist)
        elif isinstance(e, PersistOwnership):
            _write_json_durably(self.owner_file, {"epoch": e.epoch, "owner": e.owner})

    async def deliver(self, sender: str, msg: m.Message) -> None:
        self.shell.deliver(sender, msg)

    async def info(self) -> dict[str, Any]:
        return {"epoch": self.core.epoch, "owner": self.core.owner, "head_seq": self.core.head_seq,
                "head_hash": self.core.head_hash, "pid": os.getpid()}

    async def records(self, from_seq: int = 1) -> list:
        return self.core.records[max(from_seq, 1) - 1:]

    async def append_latency(self) -> LatencyHistogram:
        return self.append_hist.copy()


@ray.remote(num_cpus=0)
class ElmActor:
    """One node's replica of the log (S4, S6)."""

    def __init__(self, node_id: str, data_dir: str, settings: dict[str, Any]) -> None:
        _import_node_actor()
        self.node_id = node_id
        self.dir = Path(data_dir) / "nodes" / node_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = EventLog.open(self.dir / "log")
        snapshot, warnings = snapshot_store.load_newest_valid(self.log.path, self.log.record_hash)
        for warning in warnings:  # a stale or corrupt snapshot is skipped, never trusted
            log.warning("elm:%s: %s", node_id, warning)
        self.core = EventLogManagerCore(node_id, ProtocolSettings(**settings), list(self.log.iter_from(1)), snapshot)
        self.snapshot_seq = snapshot.seq if snapshot else 0
        self.shell = EffectRunner(m.elm_addr(node_id), self.core.step, persist=self._persist)
        self.append_hist = LatencyHistogram()  # read by this node's /metrics (log="replica")

    def _persist(self, e: Any) -> None:
        if isinstance(e, SetAsideReplica):
            self.log.set_aside()  # S17: the old history is kept, never deleted
        elif isinstance(e, Persist):
            fresh = [r for r in e.records if r.seq > self.log.head_seq]
            if fresh:
                timed_append(self.log, fresh, self.append_hist)

    async def deliver(self, sender: str, msg: m.Message) -> None:
        self.shell.deliver(sender, msg)
        if snapshot_store.due(self.snapshot_seq, self.core.head_seq):
            # Copied here, on the actor's loop, so the thread writes a consistent state. A
            # snapshot ahead of the durable log is ignored on load (its hash is not in the log).
            state = self.core.state
            self.snapshot_seq = state.seq
            copy = state.copy()
            asyncio.get_running_loop().run_in_executor(None, self._write_snapshot, copy)

    def _write_snapshot(self, state: ClusterState) -> None:
        try:
            snapshot_store.write_snapshot(self.log.path, state)
            snapshot_store.prune(self.log.path)
        except OSError as exc:
            log.warning("elm:%s: snapshot at seq %d not written: %s", self.node_id, state.seq, exc)

    async def records(self, from_seq: int = 1) -> list:
        return self.core.records[max(from_seq, 1) - 1:]

    async def replica_state(self) -> ClusterState:
        """The folded state, for the node starting beside us: it starts from this, not from the
        records, and loads those afterwards (`records_between`) for its HTTP reads."""
        return self.core.state

    async def records_between(self, from_seq: int, to_seq: int) -> list:
        """Records from_seq..to_seq (both included), as far as this replica has them."""
        return self.core.records[max(from_seq, 1) - 1 : max(to_seq, 0)]

    async def head(self) -> tuple[int, str]:
        return self.core.head_seq, self.core.head_hash

    async def append_latency(self) -> LatencyHistogram:
        return self.append_hist.copy()
