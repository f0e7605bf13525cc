"""What a node's HTTP app reads: its local replica, as records plus folded projections.

The Node actor (Ray shell) owns one `ReplicaFeed`, appends every committed batch to it, and
hands the app an `AdminPort` that forwards commands into the node's core. Tests build a
feed from real event sequences and drive admin through the simulator.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

from actors.messages import AdminReply
from events.record import Record
from projections import state as proj
from projections.state import ClusterState

SUBSCRIBER_QUEUE_MAX_BATCHES = 1000


@dataclass
class NodeHealth:
    node_id: str
    role: str
    leader: str | None
    epoch: int
    applied_seq: int
    committed_seq: int  # the newest seq this node has heard the leader commit

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node_id,
            "role": self.role,
            "leader": self.leader,
            "epoch": self.epoch,
            "applied_seq": self.applied_seq,
            "replica_lag": max(self.committed_seq - self.applied_seq, 0),
        }


AdminPort = Callable[[str, dict[str, Any]], Awaitable[AdminReply]]
HealthPort = Callable[[], NodeHealth]


@dataclass
class ReplicaFeed:
    node_id: str
    records: list[Record] = field(default_factory=list)
    state: ClusterState = field(default_factory=ClusterState)
    _changed: asyncio.Condition | None = None
    _subscribers: list[asyncio.Queue] = field(default_factory=list)

    @classmethod
    def from_records(cls, node_id: str, records: Iterable[Record]) -> ReplicaFeed:
        feed = cls(node_id)
        feed.append(list(records))
        return feed

    @property
    def seq(self) -> int:
        return self.state.seq

    def append(self, records: list[Record]) -> None:
        """Apply committed records (already in order, gapless); wake readers and streams."""
        fresh = [r for r in records if r.seq > self.seq]
        if not fresh:
            return
        proj.apply_in_place(self.state, fresh)
        self.records.extend(fresh)
        for q in list(self._subscribers):
            if q.full():  # a stalled stream client: drop it rather than grow without bound
                self._subscribers.remove(q)
                continue
            q.put_nowait(fresh)
        if self._changed is not None:
            asyncio.ensure_future(self._notify())

    def replace(self, records: list[Record]) -> None:
        """The replica was replaced by a full copy (S17): start over from these records."""
        self.records, self.state = [], ClusterState()
        self.append(records)

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_seq(self, seq: int, timeout_s: float) -> bool:
        """True once this replica has applied `seq`; False when the timeout passes first."""
        if self.seq >= seq:
            return True
        if self._changed is None:
            self._changed = asyncio.Condition()
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.seq >= seq), timeout_s)
            return True
        except asyncio.TimeoutError:
            return self.seq >= seq

    def read(self, from_seq: int = 1, limit: int = 100, type_: str | None = None, node: str | None = None) -> list[Record]:
        out: list[Record] = []
        for r in self.records[max(from_seq, 1) - 1:]:
            if (type_ is None or r.event.type == type_) and (node is None or r.node == node):
                out.append(r)
                if len(out) >= limit:
                    break
        return out

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE_MAX_BATCHES)
        self._subscribers.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        if q in self._subscribers:
            self._subscribers.remove(q)
