"""What a node's HTTP app reads: its local replica, as records plus folded projections.

The Node actor (Ray shell) owns one `ReplicaFeed`, appends every committed batch to it, and
hands the app an `AdminPort` that forwards commands into the node's core. Tests build a
feed from real event sequences and drive admin through the simulator.

Readers wait for change with `wait_until` / `wait_for_seq` (one shared asyncio.Event per
change, swapped on every append: no lock, no task per append). Time travel folds from the
nearest checkpoint (a state copy every CHECKPOINT_EVERY_RECORDS records), so a view at any
seq costs at most that many record applications.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable, Iterable

from actors.messages import AdminReply
from events.codec import GENESIS_HASH
from events.record import Record
from projections import replay
from projections import state as proj
from projections.state import ClusterState

SUBSCRIBER_QUEUE_MAX_BATCHES = 1000
HISTORY_RETRY_AFTER_S = 1  # what a reader is told to wait while a starting node loads its older records
CHECKPOINT_EVERY_RECORDS = 1000  # time travel applies at most this many records per view
PAGE_SCAN_MAX_RECORDS = 100_000  # a filtered page stops scanning here, so one request stays bounded


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


class HistoryLoading(Exception):
    """A read needs records this replica has not loaded yet: a node starts from its ELM's folded
    state and loads the records before it in the background (`ReplicaFeed.from_state`)."""


@dataclass
class _Backfill:
    """The older records of a feed that started from a folded state, as they arrive."""

    upto: int  # the seq the feed started at: records 1..upto are loaded here
    upto_hash: str
    generation: int  # the feed's generation it belongs to; a replaced replica drops it
    records: list[Record] = field(default_factory=list)
    state: ClusterState = field(default_factory=ClusterState)
    checkpoints: list[ClusterState] = field(default_factory=list)
    type_counts: Counter = field(default_factory=Counter)


AdminPort = Callable[[str, dict[str, Any]], Awaitable[AdminReply]]
HealthPort = Callable[[], NodeHealth]


class Subscription(asyncio.Queue):
    """A stream consumer's queue of record batches. `dropped` is set when the consumer fell so
    far behind that the feed stopped feeding it: it should drain what it has, then end (a
    client resumes from the records by seq, so nothing is lost)."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.dropped = False

    @property
    def finished(self) -> bool:
        return self.dropped and self.empty()


@dataclass
class ReplicaFeed:
    node_id: str
    records: list[Record] = field(default_factory=list)
    state: ClusterState = field(default_factory=ClusterState)
    generation: int = 0  # bumps when the replica is replaced by a different history (S17)
    type_counts: Counter = field(default_factory=Counter)  # events of each type in the replica
    _checkpoints: list[ClusterState] = field(default_factory=list)  # state at seq k*CHECKPOINT_EVERY_RECORDS
    _changed: asyncio.Event | None = None
    _changed_loop: asyncio.AbstractEventLoop | None = None
    _subscribers: list[Subscription] = field(default_factory=list)
    _backfill: _Backfill | None = None  # set while the records before `state`'s start are loading

    @classmethod
    def from_records(cls, node_id: str, records: Iterable[Record]) -> ReplicaFeed:
        feed = cls(node_id)
        feed.append(list(records))
        return feed

    @classmethod
    def from_state(cls, node_id: str, state: ClusterState) -> ReplicaFeed:
        """A feed that starts at `state` (its own copy) and loads the records before it later
        (`load_history`): the current view is readable at once, a read of older records raises
        HistoryLoading until they are here. A node restarts in time independent of its log's length."""
        feed = cls(node_id, state=state)
        if state.seq > 0:
            feed._backfill = _Backfill(state.seq, state.hash, feed.generation)
        return feed

    @property
    def loaded(self) -> bool:
        """Whether every record of the replica is here (not still loading after a start)."""
        return self._backfill is None

    @property
    def history_to_load(self) -> tuple[int, int] | None:
        """(next seq to load, last seq to load) while loading, else None."""
        b = self._backfill
        return None if b is None else (len(b.records) + 1, b.upto)

    def load_history(self, chunk: list[Record]) -> None:
        """The next records before the start (in order, from `history_to_load`'s first seq).
        The last chunk must end on the start's hash: anything else is a bug (the replica was
        replaced meanwhile: then `replace` dropped the load and this is a no-op)."""
        b = self._backfill
        if b is None or not chunk:
            return
        if chunk[0].seq != len(b.records) + 1 or chunk[-1].seq > b.upto:
            raise ValueError(f"history chunk {chunk[0].seq}..{chunk[-1].seq} does not follow seq {len(b.records)}")
        _fold_with_checkpoints(b.state, b.checkpoints, chunk)
        b.records.extend(chunk)
        b.type_counts.update(r.event.type for r in chunk)
        if len(b.records) < b.upto:
            return
        if b.state.hash != b.upto_hash:
            raise ValueError(f"the loaded history ends on {b.state.hash}, the feed started at {b.upto_hash}")
        self.records = b.records + self.records
        self._checkpoints = b.checkpoints + self._checkpoints
        self.type_counts = b.type_counts + self.type_counts
        self._backfill = None
        self.wake()

    def history(self) -> list[Record]:
        """Every record of the replica; HistoryLoading while the older ones are still loading."""
        if self._backfill is not None:
            raise HistoryLoading(f"records 1..{self._backfill.upto} are still loading")
        return self.records

    @property
    def seq(self) -> int:
        return self.state.seq

    @property
    def hash(self) -> str:
        return self.state.hash

    def append(self, records: list[Record]) -> None:
        """Apply committed records in order; wake readers and streams. Records after a gap are
        ignored: the node asks its ELM to send them again from the gap (`ResendFrom`)."""
        fresh = [r for r in records if r.seq > self.seq]
        if not fresh or fresh[0].seq != self.seq + 1:
            return
        self._apply(fresh)
        self.records.extend(fresh)
        self.type_counts.update(r.event.type for r in fresh)
        for q in list(self._subscribers):
            if q.full():  # a stalled stream client: drop it rather than grow without bound
                q.dropped = True
                self._subscribers.remove(q)
                continue
            q.put_nowait(fresh)
        self.wake()

    def _apply(self, fresh: list[Record]) -> None:
        _fold_with_checkpoints(self.state, self._checkpoints, fresh)

    def replace(self, records: list[Record]) -> None:
        """The replica was replaced by a full copy (S17): start over from these records."""
        self.records, self.state, self._checkpoints = [], ClusterState(), []
        self.type_counts = Counter()
        self._backfill = None  # the older records of the old history are not wanted any more
        self.generation += 1
        for q in self._subscribers:  # their batches belong to the old history: end those streams
            q.dropped = True
        self._subscribers = []
        self.append(records)
        self.wake()

    # --- waiting for change --------------------------------------------------------------------------

    def wake(self) -> None:
        """Wake every waiter (they re-check their condition). Safe from another thread."""
        ev, loop = self._changed, self._changed_loop
        self._changed = None
        if ev is None or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            ev.set()
        else:
            loop.call_soon_threadsafe(ev.set)

    def _change_event(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if self._changed is None or self._changed_loop is not loop:
            self._changed, self._changed_loop = asyncio.Event(), loop
        return self._changed

    async def wait_until(self, ready: Callable[[], bool], timeout_s: float) -> bool:
        """True once `ready()` holds (checked on every change or `wake`); False after the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not ready():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._change_event().wait(), remaining)
            except asyncio.TimeoutError:
                return ready()
        return True

    async def wait_for_seq(self, seq: int, timeout_s: float) -> bool:
        """True once this replica has applied `seq`; False when the timeout passes first."""
        return await self.wait_until(lambda: self.seq >= seq, timeout_s)

    # --- reading ---------------------------------------------------------------------------------------

    def read(self, from_seq: int = 1, limit: int = 100, type_: str | None = None, node: str | None = None) -> list[Record]:
        return self.page(from_seq, limit, type_, node)[0]

    def page(self, from_seq: int = 1, limit: int = 100, type_: str | None = None, node: str | None = None,
             scan_max: int = PAGE_SCAN_MAX_RECORDS) -> tuple[list[Record], int]:
        """Up to `limit` records from `from_seq` matching the filters, and the seq to continue from.

        `node` matches as `roster events --node` does (replay.names_node: the subject, a group
        moved from/to it, a regroup that downed it). At most `scan_max` records are looked at.
        """
        out: list[Record] = []
        start = max(from_seq, 1)
        records = self.history()
        end = min(len(records), start - 1 + scan_max)
        for i in range(start - 1, end):
            r = records[i]
            if (type_ is None or r.event.type == type_) and (node is None or replay.names_node(r, node)):
                out.append(r)
                if len(out) >= limit:
                    return out, r.seq + 1
        return out, max(end + 1, start)

    def hash_at(self, seq: int) -> str:
        """The chain hash after record `seq` (0 <= seq <= self.seq)."""
        if seq == self.seq:
            return self.state.hash
        return self.history()[seq - 1].hash if seq > 0 else GENESIS_HASH

    def state_at(self, seq: int) -> ClusterState:
        """The projections after record `seq` (0 <= seq <= self.seq). Read-only: may be the live state."""
        if not 0 <= seq <= self.seq:
            raise ValueError(f"seq {seq} is outside this replica (seqs 0..{self.seq})")
        if seq == self.seq:
            return self.state
        k = seq // CHECKPOINT_EVERY_RECORDS
        records = self.history()
        base = self._checkpoints[k - 1] if k > 0 else ClusterState()
        return proj.fold(base, records[base.seq : seq])

    def seq_at_time(self, t: datetime) -> int:
        """The last seq whose ts is at or before `t` (an aware datetime); 0 when none is.

        Bisects like logdir.LogReader.seq_at_time, then walks forward past a local step back.
        """
        records = self.history()
        keys = _TsKeys(records)
        lo = bisect_right(keys, t)
        while lo < len(records) and keys[lo] <= t:
            lo += 1
        return lo

    # --- push subscribers --------------------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        q = Subscription(SUBSCRIBER_QUEUE_MAX_BATCHES)
        self._subscribers.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        if q in self._subscribers:
            self._subscribers.remove(q)


def _fold_with_checkpoints(state: ClusterState, checkpoints: list[ClusterState], records: list[Record]) -> None:
    """Fold in place, appending a copy of the state at every checkpoint boundary crossed."""
    i = 0
    while i < len(records):
        room = CHECKPOINT_EVERY_RECORDS - state.seq % CHECKPOINT_EVERY_RECORDS
        chunk = records[i : i + room]
        proj.apply_in_place(state, chunk)
        i += len(chunk)
        if state.seq % CHECKPOINT_EVERY_RECORDS == 0:
            checkpoints.append(state.copy())


class _TsKeys:
    """The records' times as a lazy sequence for bisect (only the probed ones are parsed)."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> datetime:
        return replay.parse_time(self.records[i].ts)
