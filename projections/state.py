"""The projections together, as one replica's state: what every node keeps current."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol, Sequence

from events.record import Record
from projections import config_db, membership, resources
from projections._digest import hash_canonical
from projections.config_db import ConfigDatabase
from projections.membership import MembershipView
from projections.resources import ResourcesView


@dataclass(slots=True)
class ClusterState:
    config: ConfigDatabase = field(default_factory=ConfigDatabase)
    membership: MembershipView = field(default_factory=MembershipView)
    resources: ResourcesView = field(default_factory=ResourcesView)

    @property
    def seq(self) -> int:
        return self.membership.seq

    @property
    def hash(self) -> str:
        return self.membership.hash

    def copy(self) -> ClusterState:
        """An independent copy (each projection copied once)."""
        return ClusterState(self.config.copy(), self.membership.copy(), self.resources.copy())

    def canonical(self) -> tuple[bytes, ...]:
        """What the digest covers, part by part (a checker compares these, not their hashes).
        A log without resource events keeps the digest it always had (golden logs, old replicas)."""
        parts = (self.config.canonical(), self.membership.canonical())
        return parts if self.resources.is_empty() else (*parts, self.resources.canonical())

    def digest(self) -> str:
        return ":".join(hash_canonical(part) for part in self.canonical())

    def to_dict(self) -> dict[str, Any]:
        d = {
            "seq": self.seq,
            "hash": self.hash,
            "config": self.config.to_dict(),
            "membership": self.membership.to_dict(),
        }
        if not self.resources.is_empty():
            d["resources"] = self.resources.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClusterState:
        return cls(ConfigDatabase.from_dict(d["config"]), MembershipView.from_dict(d["membership"]),
                   ResourcesView.from_dict(d.get("resources", {})))


def fold(state: ClusterState, records: Iterable[Record]) -> ClusterState:
    """A new state with `records` applied; `state` is left as it was."""
    cfg, view, res = state.config.copy(), state.membership.copy(), state.resources.copy()
    for r in records:
        config_db.apply_in_place(cfg, r)
        membership.apply_in_place(view, r)
        resources.apply_in_place(res, r)
    return ClusterState(cfg, view, res)


def evolve(state: ClusterState, record: Record) -> ClusterState:
    return fold(state, (record,))


def apply_in_place(state: ClusterState, records: Iterable[Record]) -> None:
    """For the owner of a replica that folds as it goes (the ELM): no copy per batch."""
    for r in records:
        config_db.apply_in_place(state.config, r)
        membership.apply_in_place(state.membership, r)
        resources.apply_in_place(state.resources, r)


class Folds(Protocol):
    """How a replica's owner (an ELM, a Node core) moves its state past committed records
    that extend it: `state = folds.advance(state, records)`. Every process folds in place
    (`IN_PLACE`); the simulator at scale may share the states of identical prefixes among
    its replicas (`roster.sim.shared_folds`), so an owner never changes its state otherwise."""

    def advance(self, state: ClusterState, records: Sequence[Record]) -> ClusterState: ...


class InPlace:
    @staticmethod
    def advance(state: ClusterState, records: Sequence[Record]) -> ClusterState:
        apply_in_place(state, records)
        return state


IN_PLACE: Folds = InPlace()
