"""The Quorum core: the quorum resource (S5–S8) and the authoritative quorum log.

It grants exclusive ownership with a lease and a fencing epoch, and appends only for the
current owner at the current epoch and at the log's head. Sans-I/O: `step(msg, now)`
returns effects; the shell makes `Persist`/`PersistOwnership` durable before any `Send`.
"""

from __future__ import annotations

from typing import Callable

from actors import messages as m
from actors.auth import check_acquire
from actors.clock import iso_ms
from actors.effects import Effect, Persist, PersistOwnership, Send
from events.codec import GENESIS_HASH, seal_all
from events.record import Record
from projections import state as proj
from projections.state import ClusterState


REPLICA_STATES = frozenset({"Online", "Paused", "Joining"})  # who receives the log


class QuorumCore:
    def __init__(self, *, lease_ms: int, secret: bytes, records: list[Record] | None = None,
                 epoch: int = 0, owner: str | None = None, now: int = 0,
                 wall_ms: Callable[[], int] | None = None) -> None:
        self.lease_ms = lease_ms
        # `now` is the shell's monotonic protocol clock (leases); the envelope's `ts` is wall
        # time, read from `wall_ms` where the shell has one (the simulator: `now` itself).
        self._wall_ms = wall_ms
        self._secret = secret
        self._last_proof_at: dict[str, int] = {}  # node -> newest sent_at seen: proofs are not replayable
        self.confirmed = owner is not None  # the owner has used its grant (renewed or appended)
        self.records: list[Record] = list(records or [])
        self.state: ClusterState = proj.fold(ClusterState(), self.records)
        self.epoch = epoch
        self.owner = owner
        # After a restart nobody knows when the owner last renewed: assume a fresh lease
        # so a second owner cannot be granted while the first may still act.
        self.lease_expiry = now + lease_ms if owner is not None else now
        self._last_batch: dict[str, tuple[str, tuple[Record, ...]]] = {}

    @property
    def head_seq(self) -> int:
        return len(self.records)

    @property
    def head_hash(self) -> str:
        return self.records[-1].hash if self.records else GENESIS_HASH

    def step(self, msg: m.Message, now: int, sender: str) -> list[Effect]:
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            raise TypeError(f"quorum cannot handle {type(msg).__name__}")
        return handler(self, msg, now, sender)

    def _may_own(self, node: str) -> bool:
        cfg = self.state.config
        if cfg.cluster_id is None:  # S1: an empty quorum log: the creator forms the cluster
            return True
        return cfg.is_member(node)

    def _may_read(self, node: str) -> bool:
        if node == self.owner or self.state.config.cluster_id is None:
            return True
        view = self.state.membership.nodes.get(node)
        return self.state.config.is_member(node) and view is not None and view.state in REPLICA_STATES

    def _refusal(self, msg: m.AcquireQuorum, now: int) -> str | None:
        if not self._may_own(msg.node):
            return "not a member"
        if not check_acquire(self._secret, msg.node, msg.sent_at, msg.proof) or \
                msg.sent_at <= self._last_proof_at.get(msg.node, -1):
            return "bad credentials"
        if self.owner is not None and now < self.lease_expiry:
            # Held — also when the holder itself asks again: a fresh epoch and lease for it
            # would lock everyone else out while it cannot hear us (it lost its renewals).
            return "held"
        if self.owner == msg.node and not self.confirmed and now < self.lease_expiry + self.lease_ms:
            return "your last grant was never used"  # let another member have a turn
        return None

    def _acquire(self, msg: m.AcquireQuorum, now: int, sender: str) -> list[Effect]:
        reason = self._refusal(msg, now)
        if reason is not None:
            return [Send(sender, m.QuorumDenied(owner=self.owner, epoch=self.epoch, reason=reason))]
        self._last_proof_at[msg.node] = msg.sent_at
        self.epoch += 1  # a new epoch even for the same node: fences anything it sent before
        self.owner = msg.node
        self.confirmed = False
        self.lease_expiry = now + self.lease_ms
        grant = m.QuorumGranted(epoch=self.epoch, lease_ms=self.lease_ms, head_seq=self.head_seq, sent_at=msg.sent_at)
        return [PersistOwnership(self.epoch, self.owner), Send(sender, grant)]

    def _renew(self, msg: m.RenewLease, now: int, sender: str) -> list[Effect]:
        if msg.node != self.owner or msg.epoch != self.epoch:
            return [Send(sender, m.LeaseLost(epoch=self.epoch, owner=self.owner))]
        self.lease_expiry = now + self.lease_ms
        self.confirmed = True
        return [Send(sender, m.LeaseRenewed(epoch=self.epoch, sent_at=msg.sent_at))]

    def _release(self, msg: m.ReleaseQuorum, now: int, sender: str) -> list[Effect]:
        if msg.node != self.owner or msg.epoch != self.epoch:
            return []
        self.owner = None
        self.lease_expiry = now
        return [PersistOwnership(self.epoch, None)]

    def _append(self, msg: m.AppendEntries, now: int, sender: str) -> list[Effect]:
        if msg.node != self.owner or msg.epoch != self.epoch:
            refused = m.AppendRefused(batch_id=msg.batch_id, reason="fenced", epoch=self.epoch, head_seq=self.head_seq)
            return [Send(sender, refused)]
        last = self._last_batch.get(msg.node)
        if last is not None and last[0] == msg.batch_id:  # a retry whose answer was lost
            return [Send(sender, m.AppendAccepted(batch_id=msg.batch_id, records=last[1]))]
        if msg.expected_seq != self.head_seq:
            refused = m.AppendRefused(batch_id=msg.batch_id, reason="conflict", epoch=self.epoch, head_seq=self.head_seq)
            return [Send(sender, refused)]
        records = tuple(seal_all(msg.drafts, first_seq=self.head_seq + 1, epoch=self.epoch,
                                 ts=iso_ms(self._wall_ms() if self._wall_ms else now), prev_hash=self.head_hash))
        self.records.extend(records)
        self.confirmed = True
        proj.apply_in_place(self.state, records)
        self._last_batch[msg.node] = (msg.batch_id, records)
        return [Persist(records), Send(sender, m.AppendAccepted(batch_id=msg.batch_id, records=records))]

    def _read(self, msg: m.ReadLog, now: int, sender: str) -> list[Effect]:
        reader = msg.reply_to.split(":", 1)[-1]
        if not self._may_read(reader):
            return []  # S16/S17: the database goes only to members that joined (or the owner)
        start = max(msg.from_seq, 1) - 1
        chunk = tuple(self.records[start:start + msg.max_records])
        return [Send(msg.reply_to, m.LogRange(records=chunk, head_seq=self.head_seq))]


_HANDLERS = {
    m.AcquireQuorum: QuorumCore._acquire,
    m.RenewLease: QuorumCore._renew,
    m.ReleaseQuorum: QuorumCore._release,
    m.AppendEntries: QuorumCore._append,
    m.ReadLog: QuorumCore._read,
}
