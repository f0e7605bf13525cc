"""The EventLogManager core: one node's local replica of the log (S4, S6, S9).

Applies records strictly in order with a hash-chain check, asks the Quorum for missing
ranges when it sees a gap, keeps the projections current, and for the leader sends the
node's proposals to the Quorum (one batch in flight) and pushes commits to the other ELMs.
"""

from __future__ import annotations

from actors import messages as m
from actors.quorum import REPLICA_STATES
from actors.effects import Effect, Persist, Send, SetAsideReplica, SetTimer
from actors.settings import ProtocolSettings
from events.codec import GENESIS_HASH, check_chain
from events.record import Record
from projections import state as proj
from projections.state import ClusterState

APPEND_TIMER = "append-retry"
READ_TIMER = "read-retry"


class ReplicaDiverged(AssertionError):
    """A committed record that does not chain onto this replica: invariant 2 is broken."""


class EventLogManagerCore:
    def __init__(self, node_id: str, settings: ProtocolSettings, records: list[Record] | None = None,
                 snapshot: ClusterState | None = None, folds: proj.Folds = proj.IN_PLACE) -> None:
        self.node_id = node_id
        self.folds = folds
        self.me = m.elm_addr(node_id)
        self.settings = settings
        self.records: list[Record] = []
        self.state = ClusterState()
        self._queue: list[m.Propose] = []
        self._inflight: m.Propose | None = None
        self._reading_since: int | None = None
        self._target: int | None = None  # a CatchUp the node is waiting on
        records = list(records or [])
        if snapshot is not None and 0 < snapshot.seq <= len(records) and records[snapshot.seq - 1].hash == snapshot.hash:
            # Rebuild = snapshot + tail: only the records after the snapshot are folded again.
            self.records = records[:snapshot.seq]
            self.state = snapshot.copy()
            records = records[snapshot.seq:]
        self._apply(records, verify=True)

    # --- the replica ---------------------------------------------------------------------
    @property
    def head_seq(self) -> int:
        return len(self.records)

    @property
    def head_hash(self) -> str:
        return self.records[-1].hash if self.records else GENESIS_HASH

    def hash_at(self, seq: int) -> str | None:
        if seq == 0:
            return GENESIS_HASH
        return self.records[seq - 1].hash if 0 < seq <= self.head_seq else None

    def _apply(self, records: list[Record], *, verify: bool) -> list[Record]:
        """Apply the part of `records` that extends the head; return what was new."""
        fresh = [r for r in records if r.seq > self.head_seq]
        if not fresh or fresh[0].seq != self.head_seq + 1:
            return []
        prev = self.head_hash
        for i, r in enumerate(fresh):
            if r.seq != self.head_seq + 1 + i:
                fresh = fresh[:i]
                break
            if verify and not check_chain(prev, r):
                raise ReplicaDiverged(f"{self.me}: record {r.seq} does not chain onto {prev}")
            prev = r.hash
        self.records.extend(fresh)
        self.state = self.folds.advance(self.state, fresh)
        return fresh

    def _ingest(self, records: tuple[Record, ...], now: int, batch_id: str | None = None) -> list[Effect]:
        for r in records:  # a record we already hold must be the same record (invariant 2)
            if r.seq <= self.head_seq and self.records[r.seq - 1].hash != r.hash:
                raise ReplicaDiverged(f"{self.me}: seq {r.seq} differs from the committed record")
        fresh = self._apply(list(records), verify=True)
        out: list[Effect] = []
        if fresh:
            out += [Persist(tuple(fresh)), Send(m.node_addr(self.node_id), m.Committed(records=tuple(fresh), batch_id=batch_id))]
        if records and records[-1].seq > self.head_seq:  # a gap before these: fetch it
            out += self._request_missing(now)
        return out

    def _request_missing(self, now: int) -> list[Effect]:
        if self._reading_since is not None and now - self._reading_since < self.settings.append_retry_after_ms:
            return []
        self._reading_since = now
        read = m.ReadLog(from_seq=self.head_seq + 1, reply_to=self.me, max_records=self.settings.read_batch_max_records)
        return [Send(m.QUORUM, read), SetTimer(READ_TIMER, now + self.settings.append_retry_after_ms)]

    def _peers(self) -> list[str]:
        """Members that joined: a node refused at authentication gets no copy (S16, S17)."""
        nodes = self.state.membership.nodes
        return sorted(n for n in self.state.config.members
                      if n != self.node_id and n in nodes and nodes[n].state in REPLICA_STATES)

    # --- messages --------------------------------------------------------------------------
    def step(self, msg: m.Message, now: int, sender: str) -> list[Effect]:
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            raise TypeError(f"ELM cannot handle {type(msg).__name__}")
        return handler(self, msg, now, sender)

    def _propose(self, msg: m.Propose, now: int, sender: str) -> list[Effect]:
        self._queue.append(msg)
        return self._send_next(now)

    def _send_next(self, now: int) -> list[Effect]:
        if self._inflight is not None or not self._queue:
            return []
        self._inflight = self._queue.pop(0)
        return self._send_inflight(now)

    def _send_inflight(self, now: int) -> list[Effect]:
        p = self._inflight
        assert p is not None
        req = m.AppendEntries(node=self.node_id, epoch=p.epoch, expected_seq=self.head_seq, drafts=p.drafts, batch_id=p.batch_id)
        return [Send(m.QUORUM, req), SetTimer(APPEND_TIMER, now + self.settings.append_retry_after_ms)]

    def _accepted(self, msg: m.AppendAccepted, now: int, sender: str) -> list[Effect]:
        if self._inflight is None or msg.batch_id != self._inflight.batch_id:
            return self._ingest(msg.records, now)  # a late duplicate answer
        self._inflight = None
        out = self._ingest(msg.records, now, batch_id=msg.batch_id)
        replicate = m.Replicate(records=msg.records)  # one immutable message for every peer
        out += [Send(m.elm_addr(p), replicate) for p in self._peers()]
        return out + self._send_next(now)

    def _refused(self, msg: m.AppendRefused, now: int, sender: str) -> list[Effect]:
        if self._inflight is None or msg.batch_id != self._inflight.batch_id:
            return []
        failed = [self._inflight, *self._queue]
        self._inflight, self._queue = None, []
        out: list[Effect] = [
            Send(m.node_addr(self.node_id), m.ProposalFailed(batch_id=p.batch_id, reason=msg.reason, epoch=msg.epoch))
            for p in failed
        ]
        if msg.head_seq > self.head_seq:
            out += self._request_missing(now)
        return out

    def _timer(self, msg: m.TimerFired, now: int, sender: str) -> list[Effect]:
        if msg.key == APPEND_TIMER and self._inflight is not None:
            return self._send_inflight(now)  # same batch id: the Quorum answers a retry idempotently
        if msg.key == READ_TIMER and self._reading_since is not None:
            self._reading_since = None
            return self._request_missing(now)
        return []

    def _replicate(self, msg: m.Replicate, now: int, sender: str) -> list[Effect]:
        return self._ingest(msg.records, now)

    def _log_range(self, msg: m.LogRange, now: int, sender: str) -> list[Effect]:
        self._reading_since = None
        out = self._ingest(msg.records, now)
        if msg.head_seq > self.head_seq and msg.records:
            out += self._request_missing(now)  # more to read, in chunks
        return out + self._caught_up_reply()

    def _catch_up(self, msg: m.CatchUp, now: int, sender: str) -> list[Effect]:
        self._target = msg.target_seq
        if self.head_seq >= msg.target_seq:
            return self._caught_up_reply()
        return self._request_missing(now)

    def _caught_up_reply(self) -> list[Effect]:
        if self._target is not None and self.head_seq >= self._target:
            self._target = None
            return [Send(m.node_addr(self.node_id), m.CaughtUp(head_seq=self.head_seq))]
        return []

    def _resend(self, msg: m.ResendFrom, now: int, sender: str) -> list[Effect]:
        records = tuple(self.records[max(msg.from_seq, 1) - 1:])
        return [Send(m.node_addr(self.node_id), m.Committed(records=records))] if records else []

    def _send_sync(self, msg: m.SendSync, now: int, sender: str) -> list[Effect]:
        """S17: compare the joiner's (seq, hash) with ours: same prefix → delta, else full copy."""
        ours = self.hash_at(msg.their_seq)
        if ours is not None and ours == msg.their_hash:
            mode = "none" if msg.their_seq == self.head_seq else "delta"
            records = tuple(self.records[msg.their_seq:])
            from_seq = msg.their_seq + 1
        else:
            mode, records, from_seq = "full", tuple(self.records), 1
        sync = m.ReplicaSync(sponsor=self.node_id, mode=mode, records=records)
        sent = m.SyncSent(joiner=msg.joiner, mode=mode, from_seq=from_seq, to_seq=self.head_seq, their_seq=msg.their_seq,
                          seen_incarnation=msg.seen_incarnation)
        return [Send(m.elm_addr(msg.joiner), sync), Send(m.node_addr(self.node_id), sent)]

    def _replica_sync(self, msg: m.ReplicaSync, now: int, sender: str) -> list[Effect]:
        out: list[Effect] = []
        if msg.mode == "full" and self.records and not self._is_prefix_of(msg.records):
            out.append(SetAsideReplica())  # a different history: keep ours aside, take theirs
            self.records, self.state = [], ClusterState()
            fresh = self._apply(list(msg.records), verify=True)
            replaced = m.Committed(records=tuple(fresh), replaced=True)
            return out + [Persist(tuple(fresh)), Send(m.node_addr(self.node_id), replaced)]
        return out + self._ingest(msg.records, now)

    def _is_prefix_of(self, records: tuple[Record, ...]) -> bool:
        theirs = {r.seq: r.hash for r in records}
        return all(theirs.get(r.seq) == r.hash for r in self.records)


_HANDLERS = {
    m.Propose: EventLogManagerCore._propose,
    m.AppendAccepted: EventLogManagerCore._accepted,
    m.AppendRefused: EventLogManagerCore._refused,
    m.TimerFired: EventLogManagerCore._timer,
    m.Replicate: EventLogManagerCore._replicate,
    m.LogRange: EventLogManagerCore._log_range,
    m.CatchUp: EventLogManagerCore._catch_up,
    m.SendSync: EventLogManagerCore._send_sync,
    m.ResendFrom: EventLogManagerCore._resend,
    m.ReplicaSync: EventLogManagerCore._replica_sync,
}
