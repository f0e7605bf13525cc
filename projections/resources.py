"""ResourcesView: where each resource runs now and how it has fared, as a pure fold.

One entry per (group, resource) of the config: its state (Online / Offline / Failed /
Starting), the node that owns it, the attempt, how many times it was restarted in place,
its last failure (phase, reason, exit code, seq) and the endpoint a `process` resource
with a port serves on — what `/svc/<group>/` forwards to. A group that moves or goes
offline loses its endpoints at once: a client gets a 503 until the new owner reports
`ResourceOnline`, never a forward to the old owner.

Like the other projections: one handler per event type, `digest()` over `to_dict()`.
The view of a log without resource events is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Literal

from events import types as ev
from events.record import Record
from projections._digest import canonical_of, fragment, hash_canonical
from projections._handlers import changing

ResourceState = Literal["Online", "Offline", "Failed", "Starting"]
RESOURCE_STATES: tuple[str, ...] = ("Online", "Offline", "Failed", "Starting")


@dataclass(frozen=True, slots=True)
class Failure:
    phase: str
    reason: str
    exit_code: int | None
    seq: int
    node: str


@dataclass(frozen=True, slots=True)
class ResourceRuntime:
    group: str
    resource: str
    state: ResourceState = "Offline"
    owner: str | None = None
    attempt: int = 0
    restarts: int = 0
    endpoint: str | None = None
    last_failure: Failure | None = None
    since_seq: int = 0
    _fragment: Any = field(default=None, init=False, repr=False, compare=False, hash=False)  # _digest.fragment

    def to_dict(self) -> dict[str, Any]:
        f = self.last_failure
        return {
            "group": self.group, "resource": self.resource, "state": self.state, "owner": self.owner,
            "attempt": self.attempt, "restarts": self.restarts, "endpoint": self.endpoint,
            "since_seq": self.since_seq,
            "last_failure": None if f is None else {"phase": f.phase, "reason": f.reason, "exit_code": f.exit_code,
                                                    "seq": f.seq, "node": f.node},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResourceRuntime:
        f = d["last_failure"]
        failure = None if f is None else Failure(f["phase"], f["reason"], f["exit_code"], f["seq"], f["node"])
        return cls(d["group"], d["resource"], d["state"], d["owner"], d["attempt"], d["restarts"], d["endpoint"],
                   failure, d["since_seq"])


Key = tuple[str, str]  # (group, resource)


@dataclass(frozen=True, slots=True)
class Failover:
    """A resource of the group ran out of restarts on `node`: the group had to fail over."""

    seq: int
    at_ms: int | None  # from the record's ts (None for a record not yet committed)
    node: str


@dataclass(slots=True)
class ResourcesView:
    resources: dict[Key, ResourceRuntime] = field(default_factory=dict)
    # group -> its failovers since an admin last brought it online (WSFC FailoverThreshold)
    failovers: dict[str, tuple[Failover, ...]] = field(default_factory=dict)
    failed_on: dict[str, str] = field(default_factory=dict)  # group -> node it last failed on
    _canonical: bytes | None = field(default=None, init=False, repr=False, compare=False)  # until a change

    def copy(self) -> ResourcesView:
        return ResourcesView(dict(self.resources), dict(self.failovers), dict(self.failed_on))

    def failed_over_from(self, group: str, period_ms: int) -> set[str]:
        """The nodes the group failed over from in the period that ends at the newest failover."""
        entries = self.failovers.get(group, ())
        times = [f.at_ms for f in entries if f.at_ms is not None]
        newest = max(times, default=0)
        return {f.node for f in entries if f.node is not None and (f.at_ms is None or f.at_ms > newest - period_ms)}

    def failovers_within(self, group: str, period_ms: int) -> int:
        """Failovers in the period that ends at the newest one (the log's own clock)."""
        entries = self.failovers.get(group, ())
        times = [f.at_ms for f in entries if f.at_ms is not None]
        if not times:
            return len(entries)
        newest = max(times)
        return sum(1 for f in entries if f.at_ms is None or f.at_ms > newest - period_ms)

    def of_group(self, group: str) -> list[ResourceRuntime]:
        return [r for (g, _), r in self.resources.items() if g == group]

    def endpoint_of(self, group: str) -> str | None:
        """The endpoint of the group's Online resource that serves one (first declared)."""
        return next((r.endpoint for r in self.of_group(group) if r.state == "Online" and r.endpoint), None)

    def is_empty(self) -> bool:
        return not self.resources

    def to_dict(self) -> dict[str, Any]:
        return self._as_dict(ResourceRuntime.to_dict)

    def _as_dict(self, resource_dict: Callable[[ResourceRuntime], Any]) -> dict[str, Any]:
        d: dict[str, Any] = {"resources": [resource_dict(self.resources[k]) for k in sorted(self.resources)]}
        if self.failovers:  # only when set: a log without failovers keeps its digest
            d["failovers"] = {g: [[f.seq, f.at_ms, f.node] for f in fs] for g, fs in sorted(self.failovers.items())}
        if self.failed_on:
            d["failed_on"] = dict(sorted(self.failed_on.items()))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResourcesView:
        rs = (ResourceRuntime.from_dict(x) for x in d.get("resources", ()))
        failovers = {g: tuple(Failover(*f) for f in fs) for g, fs in d.get("failovers", {}).items()}
        return cls({(r.group, r.resource): r for r in rs}, failovers, dict(d.get("failed_on", {})))

    def canonical(self) -> bytes:
        if self._canonical is None:
            self._canonical = canonical_of(self._as_dict(fragment))
        return self._canonical

    def digest(self) -> str:
        return hash_canonical(self.canonical())


Handler = Callable[[ResourcesView, Record], None]


def _update(view: ResourcesView, group: str, resource: str, r: Record, **changes: Any) -> None:
    old = view.resources.get((group, resource))
    if old is None:
        return  # a runtime fact about a resource the config no longer holds: nothing to show
    get = changes.get  # (positionally, not `dataclasses.replace`: this runs on every replica per move)
    view.resources[(group, resource)] = ResourceRuntime(
        group, resource, get("state", old.state), get("owner", old.owner), get("attempt", old.attempt),
        get("restarts", old.restarts), get("endpoint", old.endpoint), get("last_failure", old.last_failure), r.seq)


def _added(view: ResourcesView, r: Record) -> None:
    e: ev.ResourceAdded = r.event  # type: ignore[assignment]
    key = (e.group, e.spec.name)
    if key not in view.resources:
        view.resources[key] = ResourceRuntime(e.group, e.spec.name, since_seq=r.seq)


def _removed(view: ResourcesView, r: Record) -> None:
    e: ev.ResourceRemoved = r.event  # type: ignore[assignment]
    view.resources.pop((e.group, e.resource), None)


def _online(view: ResourcesView, r: Record) -> None:
    e: ev.ResourceOnline = r.event  # type: ignore[assignment]
    _update(view, e.group, e.resource, r, state="Online", owner=e.node, attempt=e.attempt, endpoint=e.endpoint)


def _failed(view: ResourcesView, r: Record) -> None:
    e: ev.ResourceFailed = r.event  # type: ignore[assignment]
    _failed_over(view, r)
    failure = Failure(e.phase, e.reason, e.exit_code, r.seq, e.node)
    _update(view, e.group, e.resource, r, state="Failed", owner=e.node, attempt=e.attempt, endpoint=None,
            last_failure=failure)


def _ts_ms(ts: str) -> int | None:
    if not ts:
        return None
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


def _failed_over(view: ResourcesView, r: Record) -> None:
    e: ev.ResourceFailed = r.event  # type: ignore[assignment]
    if e.restarts_exhausted:
        view.failovers[e.group] = view.failovers.get(e.group, ()) + (Failover(r.seq, _ts_ms(r.ts), e.node),)
        view.failed_on[e.group] = e.node


def _online_requested(view: ResourcesView, r: Record) -> None:
    group = r.event.group  # type: ignore[attr-defined]
    view.failovers.pop(group, None)
    view.failed_on.pop(group, None)


def _restarted(view: ResourcesView, r: Record) -> None:
    e: ev.ResourceRestarted = r.event  # type: ignore[assignment]
    old = view.resources.get((e.group, e.resource))
    restarts = old.restarts + 1 if old else 0
    _update(view, e.group, e.resource, r, state="Starting", owner=e.node, attempt=e.attempt, endpoint=None,
            restarts=restarts)


def _offline(view: ResourcesView, r: Record) -> None:
    e: ev.ResourceOffline = r.event  # type: ignore[assignment]
    old = view.resources.get((e.group, e.resource))
    if old is not None and old.owner not in (None, e.node):
        return  # the old owner confirming its stop after the new owner took over: not news
    _update(view, e.group, e.resource, r, state="Offline", owner=None, endpoint=None)


def _group_moved(view: ResourcesView, r: Record) -> None:
    """The new owner will start the group's resources; until it says Online, none serves."""
    e: ev.GroupMoved = r.event  # type: ignore[assignment]
    state = "Starting" if e.to_node else "Offline"
    if e.to_node is not None:
        view.failed_on.pop(e.group, None)  # placed again: that failure has been acted on
    for res in view.of_group(e.group):
        _update(view, e.group, res.resource, r, state=state, owner=e.to_node, attempt=0, endpoint=None)


def _group_state_changed(view: ResourcesView, r: Record) -> None:
    e: ev.GroupStateChanged = r.event  # type: ignore[assignment]
    if e.state == "Online":
        return  # each resource reports its own Online
    for res in view.of_group(e.group):
        _update(view, e.group, res.resource, r, state="Offline", owner=None, endpoint=None)


def _group_deleted(view: ResourcesView, r: Record) -> None:
    group = r.event.group  # type: ignore[attr-defined]
    for key in [k for k in view.resources if k[0] == group]:
        del view.resources[key]
    view.failovers.pop(group, None)
    view.failed_on.pop(group, None)


def _no_change(view: ResourcesView, r: Record) -> None:
    """Every other event leaves the resources as they were."""


_HANDLERS: dict[str, Handler] = {
    "ResourceAdded": _added,
    "ResourceRemoved": _removed,
    "ResourceOnline": _online,
    "ResourceFailed": _failed,
    "ResourceRestarted": _restarted,
    "ResourceOffline": _offline,
    "GroupMoved": _group_moved,
    "GroupStateChanged": _group_state_changed,
    "GroupDeleted": _group_deleted,
    "GroupOnlineRequested": _online_requested,
}
for _name in ev.EVENT_TYPES:
    _HANDLERS.setdefault(_name, _no_change)
_CHANGING = changing(_HANDLERS, _no_change)


def apply_in_place(view: ResourcesView, r: Record) -> None:
    t = r.event.type
    handler = _CHANGING.get(t)
    if handler is not None:
        view._canonical = None
        handler(view, r)
    elif t not in _HANDLERS:
        raise KeyError(t)  # an event type this view does not know


def fold(view: ResourcesView, records: Iterable[Record]) -> ResourcesView:
    out = view.copy()
    for r in records:
        apply_in_place(out, r)
    return out
