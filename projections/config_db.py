"""ConfigDatabase (S1, S4, S7): the cluster's configuration, as a pure fold over the log.

`evolve(db, record)` and `fold(db, records)` return a new database and never change the
one they were given (the copy is made once per call, so a batch costs one copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

import orjson

from events.resource_spec import FailoverPolicy, ResourceSpec
from events import types as ev
from events.codec import GENESIS_HASH
from events.record import Record
from projections._digest import canonical_of, fragment, hash_canonical
from projections._handlers import changing


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    added_seq: int
    address: str | None = None


DEFAULT_FAILOVER = FailoverPolicy()


@dataclass(frozen=True, slots=True)
class GroupConfig:
    name: str
    preferred_owners: tuple[str, ...]
    failback: bool
    created_seq: int
    resources: tuple[ResourceSpec, ...] = ()  # in declaration order (start order: resource_types)
    failover: FailoverPolicy = DEFAULT_FAILOVER
    held: bool = False  # an admin took it offline: placed nowhere until brought online
    _fragment: Any = field(default=None, init=False, repr=False, compare=False, hash=False)  # _digest.fragment

    def resource(self, name: str) -> ResourceSpec | None:
        return next((s for s in self.resources if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "preferred_owners": list(self.preferred_owners),
                             "failback": self.failback, "created_seq": self.created_seq}
        # Only when set: a log without resource events keeps the digest it always had.
        if self.resources:
            d["resources"] = [s.model_dump(mode="json") for s in self.resources]
        if self.failover != DEFAULT_FAILOVER:
            d["failover"] = self.failover.model_dump(mode="json")
        if self.held:
            d["held"] = True
        return d

    @classmethod
    def from_dict(cls, g: dict[str, Any]) -> GroupConfig:
        return cls(g["name"], tuple(g["preferred_owners"]), g["failback"], g["created_seq"],
                   tuple(ResourceSpec.model_validate(s) for s in g.get("resources", ())),
                   FailoverPolicy.model_validate(g["failover"]) if "failover" in g else DEFAULT_FAILOVER,
                   bool(g.get("held", False)))


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
    # `canonical()` without its version, kept until a record changes the database (most do
    # not: the simulator's checker renders every replica at every seq). Not copied.
    _body: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def copy(self) -> ConfigDatabase:
        return replace(
            self,
            settings=dict(self.settings),
            members=dict(self.members),
            evicted=dict(self.evicted),
            groups=dict(self.groups),
        )

    def to_dict(self) -> dict[str, Any]:
        return self._as_dict(GroupConfig.to_dict)

    def _as_dict(self, group_dict: Callable[[GroupConfig], Any]) -> dict[str, Any]:
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
            "groups": [group_dict(g) for g in sorted(self.groups.values(), key=lambda g: g.name)],
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
            groups={g["name"]: GroupConfig.from_dict(g) for g in d["groups"]},
            seq=d["version"]["seq"],
            hash=d["version"]["hash"],
        )

    def canonical(self) -> bytes:
        body = self._body
        if body is None:
            d = self._as_dict(fragment)
            del d["version"]
            body = self._body = canonical_of(d)
        # "version" sorts last among the keys: these are the bytes of a whole sorted render.
        return b'%s,"version":{"hash":%s,"seq":%d}}' % (body[:-1], orjson.dumps(self.hash), self.seq)

    def digest(self) -> str:
        return hash_canonical(self.canonical())

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


def _with_resource(db: ConfigDatabase, group: str, spec: ResourceSpec) -> None:
    """Add or replace (in place, keeping the order) one resource of a group."""
    g = db.groups.get(group)
    if g is None:
        return  # a resource of a deleted group: nothing to hold it
    if g.resource(spec.name) is None:
        specs = g.resources + (spec,)
    else:
        specs = tuple(spec if s.name == spec.name else s for s in g.resources)
    db.groups[group] = replace(g, resources=specs)


def _resource_added(db: ConfigDatabase, r: Record) -> None:
    e: ev.ResourceAdded = r.event  # type: ignore[assignment]
    _with_resource(db, e.group, e.spec)


def _resource_changed(db: ConfigDatabase, r: Record) -> None:
    e: ev.ResourceChanged = r.event  # type: ignore[assignment]
    _with_resource(db, e.group, e.spec)


def _resource_removed(db: ConfigDatabase, r: Record) -> None:
    e: ev.ResourceRemoved = r.event  # type: ignore[assignment]
    g = db.groups.get(e.group)
    if g is not None:
        db.groups[e.group] = replace(g, resources=tuple(s for s in g.resources if s.name != e.resource))


def _group_policy_changed(db: ConfigDatabase, r: Record) -> None:
    e: ev.GroupPolicyChanged = r.event  # type: ignore[assignment]
    g = db.groups.get(e.group)
    if g is not None:
        owners = g.preferred_owners if e.preferred_owners is None else tuple(e.preferred_owners)
        failback = g.failback if e.failback is None else e.failback
        db.groups[e.group] = replace(g, failover=e.failover, preferred_owners=owners, failback=failback)


def _group_held(db: ConfigDatabase, r: Record) -> None:
    g = db.groups.get(r.event.group)  # type: ignore[attr-defined]
    if g is not None:
        db.groups[g.name] = replace(g, held=r.event.type == "GroupOfflineRequested")


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
    "ResourceAdded": _resource_added,
    "ResourceChanged": _resource_changed,
    "ResourceRemoved": _resource_removed,
    "GroupPolicyChanged": _group_policy_changed,
    "GroupOfflineRequested": _group_held,
    "GroupOnlineRequested": _group_held,
}
for _name in ev.EVENT_TYPES:
    _HANDLERS.setdefault(_name, _no_change)
_CHANGING = changing(_HANDLERS, _no_change)


def apply_in_place(db: ConfigDatabase, r: Record) -> None:
    """Fold one record into a database the caller owns (used by `fold` on its private copy)."""
    if r.seq != db.seq + 1:
        raise AssertionError(f"config db at seq {db.seq} cannot apply seq {r.seq}")
    t = r.event.type
    handler = _CHANGING.get(t)
    if handler is not None:
        db._body = None
        handler(db, r)
    elif t not in _HANDLERS:
        raise KeyError(t)  # an event type this database does not know
    db.seq, db.hash = r.seq, r.hash


def fold(db: ConfigDatabase, records: Iterable[Record]) -> ConfigDatabase:
    out = db.copy()
    for r in records:
        apply_in_place(out, r)
    return out


def evolve(db: ConfigDatabase, record: Record) -> ConfigDatabase:
    return fold(db, (record,))
