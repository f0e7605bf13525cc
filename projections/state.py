"""Both projections together, as one replica's state: what every node keeps current."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from events.record import Record
from projections import config_db, membership
from projections.config_db import ConfigDatabase
from projections.membership import MembershipView


@dataclass(slots=True)
class ClusterState:
    config: ConfigDatabase = field(default_factory=ConfigDatabase)
    membership: MembershipView = field(default_factory=MembershipView)

    @property
    def seq(self) -> int:
        return self.membership.seq

    @property
    def hash(self) -> str:
        return self.membership.hash

    def digest(self) -> str:
        return f"{self.config.digest()}:{self.membership.digest()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "config": self.config.to_dict(),
            "membership": self.membership.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClusterState:
        return cls(ConfigDatabase.from_dict(d["config"]), MembershipView.from_dict(d["membership"]))


def fold(state: ClusterState, records: Iterable[Record]) -> ClusterState:
    """A new state with `records` applied; `state` is left as it was."""
    cfg, view = state.config.copy(), state.membership.copy()
    for r in records:
        config_db.apply_in_place(cfg, r)
        membership.apply_in_place(view, r)
    return ClusterState(cfg, view)


def evolve(state: ClusterState, record: Record) -> ClusterState:
    return fold(state, (record,))


def apply_in_place(state: ClusterState, records: Iterable[Record]) -> None:
    """For the owner of a replica that folds as it goes (the ELM): no copy per batch."""
    for r in records:
        config_db.apply_in_place(state.config, r)
        membership.apply_in_place(state.membership, r)
