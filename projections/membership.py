"""MembershipView (S9–S12): who is in the cluster, in what state, who leads, who owns what.

A pure fold over the log, like `config_db`: `evolve`/`fold` return a new view.

`NodeView` and `GroupView` are never changed once built: a change puts a new one in the
view's dict, so a `copy()` (a shallow copy of the dicts) shares the old ones safely. They are
plain slotted dataclasses, not `frozen=True`, because a frozen `__init__` costs ≈ 3× a plain
one and a replay builds one per membership change (≈ 0.65 per record); nothing may assign to
their fields (the handlers below build a new one, field by field, positionally).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Literal

import orjson

from events import types as ev
from events.codec import GENESIS_HASH
from events.record import Record
from projections._digest import canonical_of, hash_canonical
from projections._handlers import changing

NodeState = Literal["Offline", "Joining", "Online", "Paused"]
MEMBER_STATES: frozenset[str] = frozenset({"Online", "Paused"})  # S12: full members
REQUESTS_REMEMBERED = 1000  # admin request ids kept (with their seq): a retry of an older one may run twice


@dataclass(slots=True, unsafe_hash=True)
class NodeView:
    id: str
    state: NodeState = "Offline"
    since_seq: int = 0
    reason: str = ""
    incarnation: int = 0
    misses: int = 0
    evicted: bool = False


@dataclass(slots=True, unsafe_hash=True)
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
    stopping: bool = False  # ClusterStopping until the next QuorumAcquired: place no group
    # `canonical()` but for seq, hash and ts (which every record changes): the sorted render's
    # two runs of keys around "hash" and "seq", kept until a record changes anything else.
    _body: tuple[bytes, bytes] | None = field(default=None, init=False, repr=False, compare=False)

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
        if self.stopping:  # absent when false: older digests stand
            out["stopping"] = True
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
        return cls(d["epoch"], d["leader"], nodes, groups, d["seq"], d["hash"], d["ts"],
                   requests=dict(d.get("requests", {})), stopping=d.get("stopping", False))

    def canonical(self) -> bytes:
        if self._body is None:
            d = self.to_dict()
            before_hash = canonical_of({"epoch": d["epoch"], "groups": d["groups"]})
            before_seq = canonical_of({k: d[k] for k in ("leader", "nodes", "requests") if k in d})
            self._body = (before_hash[1:-1], before_seq[1:-1])
        before_hash, before_seq = self._body
        # The keys sort epoch, groups, hash, leader, nodes, requests, seq, stopping, ts: these
        # are the bytes of the whole sorted render.
        stopping = b',"stopping":true' if self.stopping else b""
        return b'{%s,"hash":%s,%s,"seq":%d%s,"ts":%s}' % (
            before_hash, orjson.dumps(self.hash), before_seq, self.seq, stopping, orjson.dumps(self.ts))

    def digest(self) -> str:
        return hash_canonical(self.canonical())


def _group_dict(g: GroupView) -> dict[str, Any]:
    out = {"name": g.name, "owner": g.owner, "state": g.state, "since_seq": g.since_seq, "last_owner": g.last_owner}
    if g.moving_to is not None:  # (absent while unset: older logs keep their digests)
        out["moving_to"] = g.moving_to
    return out


Handler = Callable[[MembershipView, Record], None]


def _node(view: MembershipView, r: Record) -> NodeView:
    """The subject's current view (a fresh Offline one for a node not seen yet)."""
    node = r.node
    assert node is not None, f"{r.event.type} at seq {r.seq} has no subject node"
    return view.nodes.get(node) or NodeView(node)


# Each handler builds the new NodeView positionally (id, state, since_seq, reason,
# incarnation, misses, evicted): no **kwargs dict and no dataclasses.replace on the hot path.
# since_seq moves only when the state is set.


def _node_added(view: MembershipView, r: Record) -> None:
    o = _node(view, r)
    view.nodes[o.id] = NodeView(o.id, "Offline", r.seq, "added", o.incarnation, 0, False)


def _quorum_acquired(view: MembershipView, r: Record) -> None:
    view.epoch, view.leader = r.epoch, r.node
    view.stopping = False  # a new start: groups are placed by their policies again
    o = _node(view, r)
    if o.state in MEMBER_STATES:
        view.nodes[o.id] = NodeView(o.id, o.state, o.since_seq, "quorum acquired", o.incarnation, 0, o.evicted)
    else:  # S5: forming the cluster makes the new owner a full member
        view.nodes[o.id] = NodeView(o.id, "Online", r.seq, "formed", o.incarnation + 1, 0, o.evicted)


def _quorum_released(view: MembershipView, r: Record) -> None:
    if view.leader == r.node:
        view.leader = None


def _join_requested(view: MembershipView, r: Record) -> None:
    o = _node(view, r)
    reason = f"sponsored by {r.event.sponsor}"  # type: ignore[attr-defined]
    view.nodes[o.id] = NodeView(o.id, "Joining", r.seq, reason, o.incarnation, o.misses, o.evicted)


def _node_joined(view: MembershipView, r: Record) -> None:
    o = _node(view, r)
    view.nodes[o.id] = NodeView(o.id, "Online", r.seq, "joined", r.event.incarnation, 0, o.evicted)  # type: ignore[attr-defined]


def _heartbeat_missed(view: MembershipView, r: Record) -> None:
    o = _node(view, r)
    view.nodes[o.id] = NodeView(o.id, o.state, o.since_seq, o.reason, o.incarnation, r.event.count, o.evicted)  # type: ignore[attr-defined]


def _regrouped(view: MembershipView, r: Record) -> None:
    nodes = view.nodes
    for node in r.event.online:  # type: ignore[attr-defined]
        o = nodes.get(node)
        if o is not None and o.misses != 0:  # already 0: the view is the same, keep it
            nodes[node] = NodeView(o.id, o.state, o.since_seq, o.reason, o.incarnation, 0, o.evicted)


def _gone(view: MembershipView, r: Record, reason: str, evicted: bool | None = None) -> None:
    o = _node(view, r)
    view.nodes[o.id] = NodeView(o.id, "Offline", r.seq, reason, o.incarnation, 0,
                                o.evicted if evicted is None else evicted)
    if view.leader == r.node:
        view.leader = None


def _node_down(view: MembershipView, r: Record) -> None:
    _gone(view, r, f"down: {r.event.reason}")  # type: ignore[attr-defined]


def _node_exited(view: MembershipView, r: Record) -> None:
    _gone(view, r, "exited (ClusterExit)")


def _node_evicted(view: MembershipView, r: Record) -> None:
    _gone(view, r, f"evicted: {r.event.reason}", evicted=True)  # type: ignore[attr-defined]


def _node_paused(view: MembershipView, r: Record) -> None:
    o = _node(view, r)
    reason = "paused (drain)" if r.event.drain else "paused"  # type: ignore[attr-defined]
    view.nodes[o.id] = NodeView(o.id, "Paused", r.seq, reason, o.incarnation, o.misses, o.evicted)


def _node_resumed(view: MembershipView, r: Record) -> None:
    o = _node(view, r)
    view.nodes[o.id] = NodeView(o.id, "Online", r.seq, "resumed", o.incarnation, o.misses, o.evicted)


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


def _group_online_requested(view: MembershipView, r: Record) -> None:
    """An admin brings a Failed group back: Offline, so its policy places it again."""
    old = view.groups.get(r.event.group)  # type: ignore[attr-defined]
    if old is not None and old.state == "Failed":
        view.groups[old.name] = GroupView(old.name, None, "Offline", r.seq, old.last_owner)


def _group_deleted(view: MembershipView, r: Record) -> None:
    view.groups.pop(r.event.group, None)  # type: ignore[attr-defined]


def _cluster_stopping(view: MembershipView, r: Record) -> None:
    view.stopping = True


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
    "GroupOnlineRequested": _group_online_requested,
    "ClusterStopping": _cluster_stopping,
}
for _name in ev.EVENT_TYPES:
    _HANDLERS.setdefault(_name, _no_change)
# Only the handlers that change something: apply_in_place skips the call for the others.
_CHANGING: dict[str, Handler] = changing(_HANDLERS, _no_change)
# Types whose events carry a request id: a getattr with a default on the others goes through
# pydantic's __getattr__ and an AttributeError (≈ 3 µs, half of a replay's records).
_WITH_REQUEST_ID = frozenset(name for name, cls in ev.EVENT_TYPES.items() if "request_id" in cls.model_fields)


def apply_in_place(view: MembershipView, r: Record) -> None:
    seq = r.seq
    if seq != view.seq + 1:
        raise AssertionError(f"membership view at seq {view.seq} cannot apply seq {seq}")
    t = r.event.type
    handler = _CHANGING.get(t)
    if handler is not None:
        view._body = None
        handler(view, r)
    elif t not in _HANDLERS:
        raise KeyError(t)  # an event type this view does not know: as loud as before
    view.seq, view.hash, view.ts = seq, r.hash, r.ts
    if t in _WITH_REQUEST_ID:
        request_id = r.event.request_id
        if request_id is not None:
            view._body = None
            _remember_request(view.requests, request_id, seq)
    if r.epoch > view.epoch:
        view._body = None
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
