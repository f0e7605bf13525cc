"""What a core asks its shell to do. A shell carries effects out in order: a `Persist`
is durable before any `Send` after it leaves (fsync before acknowledging)."""

from __future__ import annotations

from dataclasses import dataclass

from actors.messages import Message
from events.resource_spec import ResourceSpec
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
class StartResource:
    """Start one resource of a group this node owns. The shell answers `ResourceStarted`
    (running and its first health check passed) or `ResourceFailed(phase="start")`; it
    health-checks a running resource every `spec.health.interval_ms` and reports a failure
    as `ResourceFailed(phase="run"|"probe")`. It never restarts on its own: the core decides."""

    group: str
    spec: ResourceSpec
    attempt: int  # 0: first start here; n: the n-th restart in place


@dataclass(frozen=True, slots=True)
class StopResource:
    """Stop one resource (SIGTERM, then SIGKILL after `stop_timeout_ms`; whole process
    group; or ray.kill). The shell answers `ResourceStopped` once it is provably gone."""

    group: str
    resource: str


@dataclass(frozen=True, slots=True)
class SetRunDeadline:
    """Every resource on this node must be stopped by `at_ms` (this core's clock) unless a
    later deadline replaces it. The shell enforces it beside the service (a watchdog that
    does not need the node's own event loop), so a paused or cut-off node still stops its
    services in time (S8c, invariant 4)."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class StopService:
    """The node's cluster service stops (planned leave done, or evicted)."""

    reason: str


Effect = (Send | SetTimer | Persist | PersistOwnership | SetAsideReplica | StartGroup | StopGroup | StopService
          | StartResource | StopResource | SetRunDeadline)
