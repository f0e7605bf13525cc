"""The log record: the envelope of DESIGN §2 around one event.

Records are slotted frozen dataclasses rather than pydantic models: a replay builds
millions of them, and the event inside is already a validated frozen pydantic model.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.types import Event


@dataclass(frozen=True, slots=True)
class Draft:
    """An event proposed for the log, before the Quorum gives it a seq, epoch, time and hash."""

    node: str | None  # the subject
    by: str  # the node that decided it
    event: Event


@dataclass(frozen=True, slots=True)
class Record:
    """One committed log record. `hash` chains it to every record before it."""

    seq: int
    epoch: int
    ts: str
    node: str | None
    by: str
    event: Event
    hash: str

    @property
    def type(self) -> str:
        return self.event.type


def draft(event: Event, *, by: str, node: str | None = None) -> Draft:
    return Draft(node=node, by=by, event=event)
