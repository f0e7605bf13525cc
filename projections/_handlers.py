"""What every projection's fold shares: one handler per event type, and a no-op for the types
that leave the projection as it was — those are not called at all (a replay applies each
record to three projections; most records change only one). Each `apply_in_place` keeps its
own four-line dispatch on `changing(...)`: a shared dispatch function measured +0.27 µs per
record across the three folds (1.84 → 2.11), on the replay's hot loop."""

from __future__ import annotations

from typing import Any, Callable

from events.record import Record

Handler = Callable[[Any, Record], None]


def changing(handlers: dict[str, Handler], no_change: Handler) -> dict[str, Handler]:
    """The handlers worth calling: every one but the no-op."""
    return {name: h for name, h in handlers.items() if h is not no_change}

