"""MembershipView (S9–S12): who is in the cluster, in what state, who leads, who owns what.

A pure fold over the log, like `config_db`: `evolve`/`fold` return a new view.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Literal

from events import types as ev
from events.codec import GENESIS_HASH
from events.record import Record
from projections._digest import digest_of

NodeState = Literal["Offline", "Joining", "Online", "Paused"]
MEMBER_STATES: frozenset[str] = frozenset({"Online", "Paused"})  # S12: full members
REQUESTS_REMEMBERED = 1000  # admin request ids kept (with their seq): a retry of an older one may run twice


@dataclass(frozen=True, slots=True)
class NodeView:
    id: str
    state: NodeState = "Offline"
    since_seq: int = 0
    reason: str = ""
    incarnation: int = 0
    misses: int = 0
    evicted: bool = False


@dataclass(frozen=True, slots=True)
class GroupView:
    name: str
    owner: str | None = None
    state: str = "Offline"
    since_seq: int = 0
    last_owner: str | None = None  # who ran it last: it must have stopped before another node starts it
    moving_to: str | None = None  # released to move there once the last owner has stopped it


@dataclass(slots=True)
class MembershipView:
    epoch: int = 0
    leader: str | None = None
    nodes: dict[str, NodeView] = field(default_factory=dict)
    groups: dict[str, GroupView] = field(default_factory=dict)
    seq: int = 0
    hash: str = GENESIS_HASH
    ts: str | None = None
    # Recent admin request ids -> the seq of their last record, oldest first: a new leader
    # answers a retried command from here instead of running it twice.
    requests: dict[str, int] = field(default_factory=dict)

    def copy(self) -> MembershipView:
        return replace(self, nodes=dict(self.nodes), groups=dict(self.groups), requests=dict(self.requests))

    def groups_of(self, node: str) -> list[str]:
        return sorted(g.name for g in self.groups.values() if g.owner == node)

    def is_full_member(self, node: str) -> bool:
        n = self.nodes.get(node)
        return n is not None and n.state in MEMBER_STATES

    def to_dict(self) -> dict[str, Any]:
        owned: dict[str, list[str]] = {}
        for g in sorted(self.groups.values(), key=lambda g: g.name):
            if g.owner is not None:
                owned.setdefault(g.owner, []).append(g.name)
        out = {
            "epoch": self.epoch,
            "leader": self.leader,
            "nodes": [
                {
                    "id": n.id,
                    "state": n.state,
                    "since_seq": n.since_seq,
                    "reason": n.reason,
                    "incarnation": n.incarnation,
                    "misses": n.misses,
                    "evicted": n.evicted,
                    "groups": owned.get(n.id, []),
                }
                for n in sorted(self.nodes.values(), key=lambda n: n.id)
            ],
            "groups": [_group_dict(g) for g in sorted(self.groups.values(), key=lambda g: g.name)],
            "seq": self.seq,
            "hash": self.hash,
            "ts": self.ts,
        }
        if self.requests:  # (absent while empty: a log without request ids keeps its old digests)
            out["requests"] = dict(self.requests)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MembershipView:
        nodes = {
            n["id"]: NodeView(
                n["id"], n["state"], n["since_seq"], n["reason"], n["incarnation"], n["misses"], n["evicted"]
            )
            for n in d["nodes"]
        }
        groups = {
            g["name"]: GroupView(g["name"], g["owner"], g["state"], g["since_seq"], g.get("last_owner"),
                                 g.get("moving_to"))
            for g in d["groups"]
        }
        return cls(d["epoch"], d["leader"], nodes, groups, d["seq"], d["hash"], d["ts"], dict(d.get("requests", {})))

    def digest(self) -> str:
        return digest_of(self.to_dict())


def _group_dict(g: GroupView) -> dict[str, Any]:
    out = {"name": g.name, "owner": g.owner, "state": g.state, "since_seq": g.since_seq, "last_owner": g.last_owner}
    if g.moving_to is not None:  # (absent while unset: older logs keep their digests)
        out["moving_to"] = g.moving_to
    return out


Handler = Callable[[MembershipView, Record], None]


def _set_node(view: MembershipView, r: Record, **changes: Any) -> None:
    assert r.node is not None, f"{r.event.type} at seq {r.seq} has no subject node"
    old = view.nodes.get(r.node) or NodeView(r.node)
    # Built field by field: dataclasses.replace costs several times more, on the replay hot path.
    get = changes.get
    view.nodes[r.node] = NodeView(
        old.id,
        get("state", old.state),
        r.seq if "state" in changes else old.since_seq,
        get("reason", old.reason),
        get("incarnation", old.incarnation),
        get("misses", old.misses),
        get("evicted", old.evicted),
    )


def _node_added(view: MembershipView, r: Record) -> None:
    _set_node(view, r, state="Offline", reason="added", evicted=False, misses=0)


def _quorum_acquired(view: MembershipView, r: Record) -> None:
    view.epoch, view.leader = r.epoch, r.node
    assert r.node is not None
    current = view.nodes.get(r.node) or NodeView(r.node)
    if current.state in MEMBER_STATES:
        _set_node(view, r, reason="quorum acquired", misses=0)
    else:  # S5: forming the cluster makes the new owner a full member
        _set_node(view, r, state="Online", reason="formed", incarnation=current.incarnation + 1, misses=0)


def _quorum_released(view: MembershipView, r: Record) -> None:
    if view.leader == r.node:
        view.leader = None


def _join_requested(view: MembershipView, r: Record) -> None:
    _set_node(view, r, state="Joining", reason=f"sponsored by {r.event.sponsor}")  # type: ignore[attr-defined]


def _node_joined(view: MembershipView, r: Record) -> None:
    _set_node(view, r, state="Online", reason="joined", incarnation=r.event.incarnation, misses=0)  # type: ignore[attr-defined]


def _heartbeat_missed(view: MembershipView, r: Record) -> None:
    _set_node(view, r, misses=r.event.count)  # type: ignore[attr-defined]


def _regrouped(view: MembershipView, r: Record) -> None:
    for node in r.event.online:  # type: ignore[attr-defined]
        if node in view.nodes:
            view.nodes[node] = replace(view.nodes[node], misses=0)


def _gone(view: MembershipView, r: Record, reason: str, **extra: Any) -> None:
    _set_node(view, r, state="Offline", reason=reason, misses=0, **extra)
    if view.leader == r.node:
        view.leader = None


def _node_down(view: MembershipView, r: Record) -> None:
    _gone(view, r, f"down: {r.event.reason}")  # type: ignore[attr-defined]


def _node_exited(view: MembershipView, r: Record) -> None:
    _gone(view, r, "exited (ClusterExit)")


def _node_evicted(view: MembershipView, r: Record) -> None:
    _gone(view, r, f"evicted: {r.event.reason}", evicted=True)  # type: ignore[attr-defined]


def _node_paused(view: MembershipView, r: Record) -> None:
    _set_node(view, r, state="Paused", reason="paused (drain)" if r.event.drain else "paused")  # type: ignore[attr-defined]


def _node_resumed(view: MembershipView, r: Record) -> None:
    _set_node(view, r, state="Online", reason="resumed")


def _group_created(view: MembershipView, r: Record) -> None:
    name = r.event.group  # type: ignore[attr-defined]
    view.groups[name] = GroupView(name, None, "Offline", r.seq)


def _group_moved(view: MembershipView, r: Record) -> None:
    e: ev.GroupMoved = r.event  # type: ignore[assignment]
    old = view.groups.get(e.group) or GroupView(e.group)
    last = e.to_node or old.owner or old.last_owner
    view.groups[e.group] = GroupView(e.group, e.to_node, "Online" if e.to_node else "Offline", r.seq, last)


def _group_state_changed(view: MembershipView, r: Record) -> None:
    e: ev.GroupStateChanged = r.event  # type: ignore[assignment]
    old = view.groups.get(e.group) or GroupView(e.group)
    owner = old.owner if e.state == "Online" else None
    moving_to = e.moving_to if e.state == "Offline" else None
    view.groups[e.group] = GroupView(e.group, owner, e.state, r.seq, old.owner or old.last_owner, moving_to)


def _group_deleted(view: MembershipView, r: Record) -> None:
    view.groups.pop(r.event.group, None)  # type: ignore[attr-defined]


def _no_change(view: MembershipView, r: Record) -> None:
    """Config-only and audit events (auth, sync, rejection): the view only moves its seq."""


_HANDLERS: dict[str, Handler] = {
    "NodeAdded": _node_added,
    "QuorumAcquired": _quorum_acquired,
    "QuorumReleased": _quorum_released,
    "JoinRequested": _join_requested,
    "NodeJoined": _node_joined,
    "HeartbeatMissed": _heartbeat_missed,
    "Regrouped": _regrouped,
    "NodeDown": _node_down,
    "NodeExited": _node_exited,
    "NodeEvicted": _node_evicted,
    "NodePaused": _node_paused,
    "NodeResumed": _node_resumed,
    "GroupCreated": _group_created,
    "GroupMoved": _group_moved,
    "GroupStateChanged": _group_state_changed,
    "GroupDeleted": _group_deleted,
}
for _name in ev.EVENT_TYPES:
    _HANDLERS.setdefault(_name, _no_change)


def apply_in_place(view: MembershipView, r: Record) -> None:
    if r.seq != view.seq + 1:
        raise AssertionError(f"membership view at seq {view.seq} cannot apply seq {r.seq}")
    _HANDLERS[r.event.type](view, r)
    view.seq, view.hash, view.ts = r.seq, r.hash, r.ts
    request_id = getattr(r.event, "request_id", None)
    if request_id is not None:
        _remember_request(view.requests, request_id, r.seq)
    if r.epoch > view.epoch:
        view.epoch = r.epoch


def _remember_request(requests: dict[str, int], request_id: str, seq: int) -> None:
    requests.pop(request_id, None)  # re-inserted: the newest goes last
    requests[request_id] = seq
    if len(requests) > REQUESTS_REMEMBERED:
        del requests[next(iter(requests))]


def fold(view: MembershipView, records: Iterable[Record]) -> MembershipView:
    out = view.copy()
    for r in records:
        apply_in_place(out, r)
    return out


def evolve(view: MembershipView, record: Record) -> MembershipView:
    return fold(view, (record,))
