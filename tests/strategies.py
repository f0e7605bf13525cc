"""Hypothesis strategies: random but valid event sequences (Drafts) and their sealed Records.

The sequences come from `roster.history_gen.HistoryBuilder` driven by a hypothesis-controlled
`random.Random`, so they are plausible histories (creation first, joins in order, misses up
to the regroup threshold, failovers by policy) and they still shrink.
"""

from __future__ import annotations

from hypothesis import strategies as st

from events import codec
from events.record import Draft, Record
from projections.state import ClusterState
from roster.history_gen import TS_START_MS, HistoryBuilder, seal_history

MAX_NODES = 6  # small clusters make collisions (pause the leader, evict the last Online) likely
TS_STEP_MS = 250  # sealed records are this far apart, so ts strictly increases


@st.composite
def event_sequences(draw: st.DrawFn, min_events: int = 3, max_events: int = 120) -> list[Draft]:
    """A valid history: ClusterCreated, QuorumConfigured, NodeAdded…, QuorumAcquired, then a mix."""
    rng = draw(st.randoms(use_true_random=False))
    n_nodes = draw(st.integers(min_value=1, max_value=MAX_NODES))
    n_events = draw(st.integers(min_value=min_events, max_value=max_events))
    builder = HistoryBuilder(rng, n_nodes)
    builder.create(initial_members=draw(st.integers(min_value=1, max_value=n_nodes)))
    return builder.run(n_events)


def seal(drafts: list[Draft], *, start_ms: int = TS_START_MS, step_ms: int = TS_STEP_MS) -> list[Record]:
    """Seal drafts into a hash-chained log with increasing ts (epoch +1 per QuorumAcquired)."""
    return seal_history(drafts, (start_ms + i * step_ms for i in range(len(drafts))))


@st.composite
def histories(draw: st.DrawFn, min_events: int = 3, max_events: int = 120) -> list[Record]:
    return seal(draw(event_sequences(min_events, max_events)))


def seal_after(state: ClusterState, *drafts: Draft) -> list[Record]:
    """Seal drafts as the records that follow `state` (its seq, epoch and hash chain go on)."""
    out, prev = [], state.hash
    for seq, d in enumerate(drafts, start=state.seq + 1):
        ts = f"2024-02-01T00:00:{seq % 60:02d}.000Z"
        rec = codec.seal(d, seq=seq, epoch=state.membership.epoch, ts=ts, prev_hash=prev)
        out.append(rec)
        prev = rec.hash
    return out
