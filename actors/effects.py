"""What a core asks its shell to do. A shell carries effects out in order: a `Persist`
is durable before any `Send` after it leaves (fsync before acknowledging)."""

from __future__ import annotations

from dataclasses import dataclass

from actors.messages import Message
from events.record import Record


@dataclass(frozen=True, slots=True)
class Send:
    to: str
    msg: Message


@dataclass(frozen=True, slots=True)
class SetTimer:
    key: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class Persist:
    """Append these records to this actor's durable log (fsync) before the next effect."""

    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class PersistOwnership:
    """The Quorum's grant state (epoch, owner) must survive a crash before a grant is sent."""

    epoch: int
    owner: str | None


@dataclass(frozen=True, slots=True)
class SetAsideReplica:
    """S17: a full copy replaces the replica; the old copy is kept aside, never deleted."""


@dataclass(frozen=True, slots=True)
class StartGroup:
    group: str


@dataclass(frozen=True, slots=True)
class StopGroup:
    group: str


@dataclass(frozen=True, slots=True)
class StopService:
    """The node's cluster service stops (planned leave done, or evicted)."""

    reason: str


Effect = Send | SetTimer | Persist | PersistOwnership | SetAsideReplica | StartGroup | StopGroup | StopService
