"""Shared folds for the simulator at scale: one state per distinct log prefix, not per replica.

In one simulated cluster every ELM and every Node core folds the same records, so with
1,000 nodes each record is folded 2,000 times (the join phase: every joiner copies the whole
log). A record's hash names its whole prefix (the hash chain), and the projections are pure
folds of that prefix, so the state after a record is the same on every replica that holds
it: the first replica to fold a batch keeps its result here, keyed by the batch's last hash,
and every other replica that folds a batch ending at that hash takes the same object.

Shared states are never folded in place: `advance` copies before it folds (copy on write),
and the cores change their state only through `advance` (`projections.state.Folds`). Used
by `bench/bench_scale.py`, where the invariant checker is off; the sweeps keep every
replica's own fold, which is what invariant 3 compares (a fidelity test checks that a run
with shared folds is the same run: tests/test_sim_shared_folds.py).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from events.record import Record
from projections import state as proj
from projections.state import ClusterState

SHARED_STATES_KEPT = 512  # states of the newest batches: laggards and joiners mostly fold up to the head


class SharedFolds:
    def __init__(self, kept: int = SHARED_STATES_KEPT) -> None:
        self.kept = kept
        self.after: OrderedDict[str, ClusterState] = OrderedDict()  # last record's hash -> the state after it
        self.folded = 0  # records folded here (for the bench's report)
        self.shared = 0  # records another replica had folded already

    def advance(self, state: ClusterState, records: Sequence[Record]) -> ClusterState:
        if not records:
            return state
        if records[0].seq != state.seq + 1:
            raise AssertionError(f"records from seq {records[0].seq} do not extend a state at seq {state.seq}")
        # The newest state already folded by someone, from the end: the rest is folded here.
        for i in range(len(records) - 1, -1, -1):
            hit = self.after.get(records[i].hash)
            if hit is not None:
                self.after.move_to_end(records[i].hash)
                self.shared += i + 1
                state, records = hit, records[i + 1:]
                break
        if not records:
            return state
        mine = state.copy()
        proj.apply_in_place(mine, records)
        self.folded += len(records)
        self.after[records[-1].hash] = mine
        if len(self.after) > self.kept:
            self.after.popitem(last=False)
        return mine
