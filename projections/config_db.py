"""ConfigDatabase (S1, S4, S7): the cluster's configuration, as a pure fold over the log.

`evolve(db, record)` and `fold(db, records)` return a new database and never change the
one they were given (the copy is made once per call, so a batch costs one copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

from events import types as ev
from events.codec import GENESIS_HASH
from events.record import Record
from projections._digest import digest_of


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    added_seq: int
    address: str | None = None


@dataclass(frozen=True, slots=True)
class GroupConfig:
    name: str
    preferred_owners: tuple[str, ...]
    failback: bool
    created_seq: int


@dataclass(slots=True)
class ConfigDatabase:
    cluster_id: str | None = None
    name: str | None = None
    secret_fingerprint: str | None = None
    settings: dict[str, int] = field(default_factory=dict)
    quorum_resource: str | None = None
    quorum_lease_ms: int | None = None
    members: dict[str, Member] = field(default_factory=dict)
    evicted: dict[str, int] = field(default_factory=dict)  # node -> seq of its eviction
    groups: dict[str, GroupConfig] = field(default_factory=dict)
    seq: int = 0
    hash: str = GENESIS_HASH

    def copy(self) -> ConfigDatabase:
        return replace(
            self,
            settings=dict(self.settings),
            members=dict(self.members),
            evicted=dict(self.evicted),
            groups=dict(self.groups),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster_id": self.cluster_id,
            "name": self.name,
            "secret_fingerprint": self.secret_fingerprint,
            "settings": dict(sorted(self.settings.items())),
            "quorum": {"resource": self.quorum_resource, "lease_ms": self.quorum_lease_ms},
            "members": [
                {"id": m.id, "added_seq": m.added_seq, "address": m.address}
                for m in sorted(self.members.values(), key=lambda m: m.id)
            ],
            "evicted": dict(sorted(self.evicted.items())),
            "groups": [
                {
                    "name": g.name,
                    "preferred_owners": list(g.preferred_owners),
                    "failback": g.failback,
                    "created_seq": g.created_seq,
                }
                for g in sorted(self.groups.values(), key=lambda g: g.name)
            ],
            "version": {"seq": self.seq, "hash": self.hash},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfigDatabase:
        return cls(
            cluster_id=d["cluster_id"],
            name=d["name"],
            secret_fingerprint=d["secret_fingerprint"],
            settings=dict(d["settings"]),
            quorum_resource=d["quorum"]["resource"],
            quorum_lease_ms=d["quorum"]["lease_ms"],
            members={m["id"]: Member(m["id"], m["added_seq"], m["address"]) for m in d["members"]},
            evicted=dict(d["evicted"]),
            groups={
                g["name"]: GroupConfig(g["name"], tuple(g["preferred_owners"]), g["failback"], g["created_seq"])
                for g in d["groups"]
            },
            seq=d["version"]["seq"],
            hash=d["version"]["hash"],
        )

    def digest(self) -> str:
        return digest_of(self.to_dict())

    def is_member(self, node: str) -> bool:
        return node in self.members


Handler = Callable[[ConfigDatabase, Record], None]


def _cluster_created(db: ConfigDatabase, r: Record) -> None:
    e: ev.ClusterCreated = r.event  # type: ignore[assignment]
    db.cluster_id, db.name, db.secret_fingerprint = e.cluster_id, e.name, e.secret_fingerprint
    db.settings = dict(e.settings)


def _quorum_configured(db: ConfigDatabase, r: Record) -> None:
    e: ev.QuorumConfigured = r.event  # type: ignore[assignment]
    db.quorum_resource, db.quorum_lease_ms = e.resource, e.lease_ms


def _node_added(db: ConfigDatabase, r: Record) -> None:
    assert r.node is not None
    db.members[r.node] = Member(r.node, r.seq, r.event.address)  # type: ignore[attr-defined]
    db.evicted.pop(r.node, None)  # S20: an evicted node returns only by being added again


def _node_evicted(db: ConfigDatabase, r: Record) -> None:
    assert r.node is not None
    db.members.pop(r.node, None)
    db.evicted[r.node] = r.seq


def _group_created(db: ConfigDatabase, r: Record) -> None:
    e: ev.GroupCreated = r.event  # type: ignore[assignment]
    db.groups[e.group] = GroupConfig(e.group, tuple(e.preferred_owners), e.failback, r.seq)


def _group_deleted(db: ConfigDatabase, r: Record) -> None:
    db.groups.pop(r.event.group, None)  # type: ignore[attr-defined]


def _settings_changed(db: ConfigDatabase, r: Record) -> None:
    db.settings.update(r.event.changes)  # type: ignore[attr-defined]


def _no_change(db: ConfigDatabase, r: Record) -> None:
    """Membership-only events: the configuration database is unchanged (its version moves on)."""


_HANDLERS: dict[str, Handler] = {
    "ClusterCreated": _cluster_created,
    "QuorumConfigured": _quorum_configured,
    "NodeAdded": _node_added,
    "NodeEvicted": _node_evicted,
    "GroupCreated": _group_created,
    "GroupDeleted": _group_deleted,
    "SettingsChanged": _settings_changed,
}
for _name in ev.EVENT_TYPES:
    _HANDLERS.setdefault(_name, _no_change)


def apply_in_place(db: ConfigDatabase, r: Record) -> None:
    """Fold one record into a database the caller owns (used by `fold` on its private copy)."""
    if r.seq != db.seq + 1:
        raise AssertionError(f"config db at seq {db.seq} cannot apply seq {r.seq}")
    _HANDLERS[r.event.type](db, r)
    db.seq, db.hash = r.seq, r.hash


def fold(db: ConfigDatabase, records: Iterable[Record]) -> ConfigDatabase:
    out = db.copy()
    for r in records:
        apply_in_place(out, r)
    return out


def evolve(db: ConfigDatabase, record: Record) -> ConfigDatabase:
    return fold(db, (record,))
