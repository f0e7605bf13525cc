"""Time travel over records: diff two states, a node's timeline, time parsing.

Pure (states and record iterables in, values out). Reading a log directory lives in
`roster.logdir`, the shell around these folds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from events.record import Record
from projections import config_db, membership
from projections.config_db import ConfigDatabase
from projections.membership import MembershipView, NodeView
from projections.state import ClusterState


# --- diff -----------------------------------------------------------------------------------

_EVENT_WORDS = {"added", "removed", "created", "deleted", "evicted", "readmitted", "appeared", "gone"}


@dataclass(frozen=True, slots=True)
class Change:
    """One human-meaningful difference between two states."""

    area: str  # "config" | "membership"
    kind: str  # cluster, quorum, setting, member, evicted, group, epoch, leader, node
    subject: str  # node id, group name, setting key; "" for cluster-wide values
    field: str  # what changed (state, owner, value...) or what happened (added, deleted...)
    before: Any
    after: Any

    def describe(self) -> str:
        head = f"{self.kind} {self.subject}".rstrip()
        if self.field in _EVENT_WORDS:
            detail = self.after if self.after is not None else self.before
            return f"{head} {self.field}" + (f" ({_show(detail)})" if detail not in (None, "") else "")
        return f"{head} {self.field}: {_show(self.before)} -> {_show(self.after)}"

    def to_dict(self) -> dict[str, Any]:
        return {"area": self.area, "kind": self.kind, "subject": self.subject, "field": self.field,
                "before": self.before, "after": self.after}


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "[]"
    return str(value)


def _fields(area: str, kind: str, subject: str, a: Any, b: Any, names: Iterable[str]) -> list[Change]:
    return [Change(area, kind, subject, n, getattr(a, n), getattr(b, n))
            for n in names if getattr(a, n) != getattr(b, n)]


def _keyed(area: str, kind: str, a: dict[str, Any], b: dict[str, Any], fields: tuple[str, ...],
           words: tuple[str, str], show: Callable[[Any], Any]) -> list[Change]:
    """Changes of a keyed collection: appeared/gone items, then changed fields, by key."""
    out: list[Change] = []
    for key in sorted(a.keys() | b.keys()):
        if key not in a:
            out.append(Change(area, kind, key, words[0], None, show(b[key])))
        elif key not in b:
            out.append(Change(area, kind, key, words[1], show(a[key]), None))
        else:
            out.extend(_fields(area, kind, key, a[key], b[key], fields))
    return out


def _diff_config(a: ConfigDatabase, b: ConfigDatabase) -> list[Change]:
    out = _fields("config", "cluster", "", a, b, ("cluster_id", "name", "secret_fingerprint"))
    out += _fields("config", "quorum", "", a, b, ("quorum_resource", "quorum_lease_ms"))
    for key in sorted(a.settings.keys() | b.settings.keys()):
        if a.settings.get(key) != b.settings.get(key):
            out.append(Change("config", "setting", key, "value", a.settings.get(key), b.settings.get(key)))
    out += _keyed("config", "member", a.members, b.members, ("address", "added_seq"),
                  ("added", "removed"), lambda m: m.address)
    out += _keyed("config", "evicted", a.evicted, b.evicted, (), ("evicted", "readmitted"), lambda seq: seq)
    out += _keyed("config", "group", a.groups, b.groups, ("preferred_owners", "failback"),
                  ("created", "deleted"), lambda g: list(g.preferred_owners))
    return out


def _diff_membership(a: MembershipView, b: MembershipView) -> list[Change]:
    out = _fields("membership", "epoch", "", a, b, ("epoch",))
    out += _fields("membership", "leader", "", a, b, ("leader",))
    out += _keyed("membership", "node", a.nodes, b.nodes, ("state", "incarnation"),
                  ("appeared", "gone"), lambda n: n.state)
    out += _keyed("membership", "group", a.groups, b.groups, ("owner", "state"),
                  ("appeared", "gone"), lambda g: g.owner)
    return out


def diff(a: ClusterState, b: ClusterState) -> list[Change]:
    """What changed from `a` to `b`: config first, then membership; each part sorted by subject."""
    return _diff_config(a.config, b.config) + _diff_membership(a.membership, b.membership)


# --- timeline -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    seq: int
    ts: str
    type: str
    by: str
    from_state: str | None  # None: the node was not yet known to the membership view
    to_state: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "type": self.type, "by": self.by,
                "from": self.from_state, "to": self.to_state, "reason": self.reason}


def _lifecycle(n: NodeView | None) -> tuple[Any, ...] | None:
    """The parts of a NodeView a timeline reports: misses and since_seq alone are noise."""
    return None if n is None else (n.state, n.evicted, n.incarnation)


def _entry(r: Record, before: NodeView | None, after: NodeView | None,
           was_leader: bool, is_leader: bool, epoch: int) -> TimelineEntry | None:
    parts: list[str] = []
    if _lifecycle(before) != _lifecycle(after) and after is not None:
        parts.append(after.reason)
    if is_leader and not was_leader:
        parts.append(f"leader of epoch {epoch}")
    elif was_leader and not is_leader:
        parts.append("no longer leader")
    if r.event.type == "JoinRejected":  # S16: the rejection changes nothing, but it is why a node stays out
        parts.append(f"join rejected by {r.event.sponsor}: {r.event.reason}")  # type: ignore[attr-defined]
    if not parts:
        return None
    return TimelineEntry(r.seq, r.ts, r.event.type, r.by,
                         before.state if before else None, after.state if after else None, "; ".join(parts))


def timeline(records: Iterable[Record], node: str, start: ClusterState | None = None) -> list[TimelineEntry]:
    """Each lifecycle change of `node` (state, eviction, incarnation, leadership, rejected join).

    Folds every record (from `start`, default the empty state) and compares the node's view
    before and after each record that names it, or that changes who leads.
    """
    state = ClusterState() if start is None else start.copy()
    cfg, view = state.config, state.membership
    out: list[TimelineEntry] = []
    for r in records:
        before, was_leader = view.nodes.get(node), view.leader == node
        config_db.apply_in_place(cfg, r)
        membership.apply_in_place(view, r)
        is_leader = view.leader == node
        if r.node != node and was_leader == is_leader:
            continue
        entry = _entry(r, before, view.nodes.get(node), was_leader, is_leader, view.epoch)
        if entry is not None:
            out.append(entry)
    return out


def names_node(r: Record, node: str) -> bool:
    """Whether a record is about `node`: its subject, a group moved from/to it, or a regroup that downed it."""
    if r.node == node:
        return True
    e = r.event
    if e.type == "GroupMoved":
        return node in (e.from_node, e.to_node)  # type: ignore[attr-defined]
    if e.type == "Regrouped":
        return node in e.down  # type: ignore[attr-defined]
    return False


# --- reading a log directory without its lock -------------------------------------------------

def parse_time(text: str) -> datetime:
    """An ISO-8601 time (date, seconds or ms; `Z`, an offset, or none meaning UTC)."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"cannot read {text!r} as an ISO-8601 time (e.g. 2024-01-01T12:00:00.000Z)") from None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t
