"""The log record: the envelope of DESIGN §2 around one event.

Records are slotted dataclasses rather than pydantic models: a replay builds millions of
them, and the event inside is already a validated frozen pydantic model. They are not
`frozen=True` because a frozen dataclass's `__init__` sets each field through
`object.__setattr__` and costs ≈ 3× a plain one (0.9 µs against 0.3 µs for a Record), paid
once per record on every replay and in the simulator. Treat them as immutable all the same:
nothing assigns to a Record's fields, and `unsafe_hash=True` keeps them hashable by value as
a frozen dataclass was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from events.types import Event


@dataclass(frozen=True, slots=True)
class Draft:
    """An event proposed for the log, before the Quorum gives it a seq, epoch, time and hash."""

    node: str | None  # the subject
    by: str  # the node that decided it
    event: Event


@dataclass(slots=True, unsafe_hash=True)
class Record:
    """One committed log record. `hash` chains it to every record before it."""

    seq: int
    epoch: int
    ts: str
    node: str | None
    by: str
    event: Event
    hash: str
    # `codec.check_chain`'s memo: the previous hash this very object was verified against.
    # The simulator hands one Record object to every replica, which then need not hash it
    # again; a record that crosses a process (pickle) arrives without it and is verified anew.
    chained_to: str | None = field(default=None, init=False, compare=False, hash=False, repr=False)

    @property
    def type(self) -> str:
        return self.event.type

    def __reduce__(self):  # (without the memo: the receiver verifies for itself)
        return (Record, (self.seq, self.epoch, self.ts, self.node, self.by, self.event, self.hash))


def draft(event: Event, *, by: str, node: str | None = None) -> Draft:
    return Draft(node=node, by=by, event=event)
