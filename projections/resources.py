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

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Literal

from events import types as ev
from events.record import Record
from projections._digest import digest_of

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


@dataclass(slots=True)
class ResourcesView:
    resources: dict[Key, ResourceRuntime] = field(default_factory=dict)

    def copy(self) -> ResourcesView:
        return ResourcesView(dict(self.resources))

    def of_group(self, group: str) -> list[ResourceRuntime]:
        return [r for (g, _), r in self.resources.items() if g == group]

    def endpoint_of(self, group: str) -> str | None:
        """The endpoint of the group's Online resource that serves one (first declared)."""
        return next((r.endpoint for r in self.of_group(group) if r.state == "Online" and r.endpoint), None)

    def is_empty(self) -> bool:
        return not self.resources

    def to_dict(self) -> dict[str, Any]:
        return {"resources": [self.resources[k].to_dict() for k in sorted(self.resources)]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResourcesView:
        rs = (ResourceRuntime.from_dict(x) for x in d.get("resources", ()))
        return cls({(r.group, r.resource): r for r in rs})

    def digest(self) -> str:
        return digest_of(self.to_dict())


Handler = Callable[[ResourcesView, Record], None]


def _update(view: ResourcesView, group: str, resource: str, r: Record, **changes: Any) -> None:
    old = view.resources.get((group, resource))
    if old is None:
        return  # a runtime fact about a resource the config no longer holds: nothing to show
    view.resources[(group, resource)] = replace(old, since_seq=r.seq, **changes)


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
    failure = Failure(e.phase, e.reason, e.exit_code, r.seq, e.node)
    _update(view, e.group, e.resource, r, state="Failed", owner=e.node, attempt=e.attempt, endpoint=None,
            last_failure=failure)


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
}
for _name in ev.EVENT_TYPES:
    _HANDLERS.setdefault(_name, _no_change)


def apply_in_place(view: ResourcesView, r: Record) -> None:
    _HANDLERS[r.event.type](view, r)


def fold(view: ResourcesView, records: Iterable[Record]) -> ResourcesView:
    out = view.copy()
    for r in records:
        apply_in_place(out, r)
    return out
