"""The event vocabulary: every state change of a Roster cluster, as a frozen model.

An event body carries only its own facts; the envelope (seq, epoch, ts, node, by, hash)
lives in `events.record.Record`. Names are past-tense facts. Each type has a schema
version `v`; older versions are upcast on read (`events.upcast`).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from events.resource_spec import FailoverPolicy, ResourceSpec

JoinRejection = Literal["unknown_member", "bad_credentials", "evicted", "wrong_cluster"]
SyncMode = Literal["none", "delta", "full"]
GroupState = Literal["Online", "Offline", "Failed"]
ResourceFailPhase = Literal["start", "run", "probe"]


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    v: int = 1


class AdminEvent(Event):
    """An event an admin command may cause. `request_id` names the command (None for the
    leader's own decisions), so a new leader rebuilds duplicate detection from the log and a
    client told "outcome unknown" can look its command up.

    Fields added after v1 are optional and left out of the bytes while unset (None): a record
    written before they existed re-encodes to the same bytes, so its hash still checks."""

    request_id: str | None = None

    @model_serializer(mode="wrap")
    def _omit_unset_additions(self, handler: SerializerFunctionWrapHandler) -> dict:
        data = handler(self)
        for key in OPTIONAL_ADDITIONS:
            if key in data and data[key] is None:
                del data[key]
        return data


# Fields added to an existing type with a None default: omitted from the bytes while None.
OPTIONAL_ADDITIONS = ("request_id", "moving_to")


class ClusterCreated(Event):
    """S1: a cluster name, its id and its settings; the secret is kept as a fingerprint only."""

    type: Literal["ClusterCreated"] = "ClusterCreated"
    cluster_id: str
    name: str
    secret_fingerprint: str
    settings: dict[str, int] = Field(default_factory=dict)


class QuorumConfigured(Event):
    """S3/S7: the shared quorum resource every member can reach."""

    type: Literal["QuorumConfigured"] = "QuorumConfigured"
    resource: str
    lease_ms: int


class NodeAdded(AdminEvent):
    """S1/S4: a server is added to the member list; only added members can authenticate."""

    type: Literal["NodeAdded"] = "NodeAdded"
    address: str | None = None


class QuorumAcquired(Event):
    """S5/S8b: the subject node took exclusive ownership of the quorum (the epoch is in the envelope)."""

    type: Literal["QuorumAcquired"] = "QuorumAcquired"
    lease_ms: int


class QuorumReleased(Event):
    type: Literal["QuorumReleased"] = "QuorumReleased"


class JoinRequested(Event):
    """S13/S15: a node asked its sponsor to join, holding a replica up to `replica_seq`."""

    type: Literal["JoinRequested"] = "JoinRequested"
    sponsor: str
    replica_seq: int


class NodeAuthenticated(Event):
    """S15: the sponsor checked the joiner's challenge response."""

    type: Literal["NodeAuthenticated"] = "NodeAuthenticated"
    sponsor: str


class JoinRejected(Event):
    """S16: a join refused; `suppressed` counts rejections rate-limited since the last one logged."""

    type: Literal["JoinRejected"] = "JoinRejected"
    sponsor: str
    reason: JoinRejection
    suppressed: int = 0


class ConfigDbSynced(Event):
    """S17: the sponsor brought the joiner's configuration database up to date."""

    type: Literal["ConfigDbSynced"] = "ConfigDbSynced"
    sponsor: str
    mode: SyncMode
    from_seq: int
    to_seq: int


class NodeJoined(Event):
    """S4/S11: the node is a full member (Online) under a new incarnation."""

    type: Literal["NodeJoined"] = "NodeJoined"
    incarnation: int


class HeartbeatMissed(Event):
    """A heartbeat interval passed with no heartbeat from the subject; `count` is consecutive."""

    type: Literal["HeartbeatMissed"] = "HeartbeatMissed"
    count: int


class Regrouped(Event):
    """S22: a regroup round; responders form the membership, the rest are down."""

    type: Literal["Regrouped"] = "Regrouped"
    online: tuple[str, ...]
    down: tuple[str, ...]
    reason: str


class NodeDown(Event):
    type: Literal["NodeDown"] = "NodeDown"
    reason: str


class NodePaused(AdminEvent):
    """S12: a full member that accepts no new groups."""

    type: Literal["NodePaused"] = "NodePaused"
    drain: bool = False


class NodeResumed(AdminEvent):
    type: Literal["NodeResumed"] = "NodeResumed"


class NodeExited(AdminEvent):
    """S19/S21: ClusterExit received from the subject; a planned leave, no regroup."""

    type: Literal["NodeExited"] = "NodeExited"


class NodeEvicted(AdminEvent):
    """S20: forced out of the member list; it may return only after being added again."""

    type: Literal["NodeEvicted"] = "NodeEvicted"
    reason: str


class GroupCreated(AdminEvent):
    type: Literal["GroupCreated"] = "GroupCreated"
    group: str
    preferred_owners: tuple[str, ...] = ()
    failback: bool = False


class GroupMoved(AdminEvent):
    """A resource group got a new owner (`to_node` None: no node can take it, it is Offline)."""

    type: Literal["GroupMoved"] = "GroupMoved"
    group: str
    from_node: str | None
    to_node: str | None
    reason: str


class GroupStateChanged(AdminEvent):
    type: Literal["GroupStateChanged"] = "GroupStateChanged"
    group: str
    state: GroupState
    reason: str
    moving_to: str | None = None  # a release that moves the group: where it goes once stopped


class GroupDeleted(AdminEvent):
    type: Literal["GroupDeleted"] = "GroupDeleted"
    group: str


class ClusterStopping(AdminEvent):
    """A planned stop of the whole cluster began (`roster down`, Ctrl-C of `roster up`): each
    group went offline once and none is placed again until the next leader takes the quorum."""

    type: Literal["ClusterStopping"] = "ClusterStopping"
    reason: str = "cluster stopping"


class SettingsChanged(Event):
    type: Literal["SettingsChanged"] = "SettingsChanged"
    changes: dict[str, int]


# --- resources: configuration (folded into the ConfigDatabase) -----------------------------


class ResourceAdded(AdminEvent):
    """A resource joined its group's ordered list (validated by `actors.resource_types`)."""

    type: Literal["ResourceAdded"] = "ResourceAdded"
    group: str
    spec: ResourceSpec


class ResourceChanged(AdminEvent):
    """A resource's spec was replaced; it keeps its place in the group's order."""

    type: Literal["ResourceChanged"] = "ResourceChanged"
    group: str
    spec: ResourceSpec


class ResourceRemoved(AdminEvent):
    type: Literal["ResourceRemoved"] = "ResourceRemoved"
    group: str
    resource: str


class GroupPolicyChanged(AdminEvent):
    """A group's failover policy (WSFC FailoverThreshold / FailoverPeriod)."""

    type: Literal["GroupPolicyChanged"] = "GroupPolicyChanged"
    group: str
    failover: FailoverPolicy
    preferred_owners: tuple[str, ...] | None = None  # None: unchanged
    failback: bool | None = None  # None: unchanged


class GroupOfflineRequested(AdminEvent):
    """An admin took the group offline: its owner stops it and it is placed nowhere until
    an admin brings it online (WSFC: a group taken offline is not failed over)."""

    type: Literal["GroupOfflineRequested"] = "GroupOfflineRequested"
    group: str


class GroupOnlineRequested(AdminEvent):
    """An admin brought the group (back) online: a Failed or offline group is placed by its
    policy again, and its failover count starts over."""

    type: Literal["GroupOnlineRequested"] = "GroupOnlineRequested"
    group: str


class ResourceRestartRequested(AdminEvent):
    """An admin asked for a restart in place; the owner stops and starts the resource
    (not counted against its restart threshold)."""

    type: Literal["ResourceRestartRequested"] = "ResourceRestartRequested"
    group: str
    resource: str


# --- resources: runtime facts (folded into the ResourcesView) ------------------------------
# A group past its failover threshold is `GroupStateChanged(state="Failed")`: the membership
# view already folds that, so there is no second "group failed" event.


class ResourceOnline(Event):
    """The resource runs on `node` and passed its first health check; `endpoint` is the
    "host:port" a `process` resource with a port serves on (what /svc/ forwards to)."""

    type: Literal["ResourceOnline"] = "ResourceOnline"
    group: str
    resource: str
    node: str
    attempt: int
    endpoint: str | None = None


class ResourceFailed(Event):
    """It did not start, exited, or failed its health check (phase), with the exit code a
    process left (None: still running when the probe failed, or not a process)."""

    type: Literal["ResourceFailed"] = "ResourceFailed"
    group: str
    resource: str
    node: str
    attempt: int
    phase: ResourceFailPhase
    reason: str
    exit_code: int | None = None
    restarts_exhausted: bool = False  # past its restart threshold: the group fails over


class ResourceRestarted(Event):
    """The core restarts it in place on `node`: the `attempt`-th restart in the period."""

    type: Literal["ResourceRestarted"] = "ResourceRestarted"
    group: str
    resource: str
    node: str
    attempt: int


class ResourceOffline(Event):
    """It is provably stopped on `node` (its process group gone, or Ray reports the actor dead)."""

    type: Literal["ResourceOffline"] = "ResourceOffline"
    group: str
    resource: str
    node: str
    reason: str


AnyEvent = Annotated[
    Union[
        ClusterCreated,
        QuorumConfigured,
        NodeAdded,
        QuorumAcquired,
        QuorumReleased,
        JoinRequested,
        NodeAuthenticated,
        JoinRejected,
        ConfigDbSynced,
        NodeJoined,
        HeartbeatMissed,
        Regrouped,
        NodeDown,
        NodePaused,
        NodeResumed,
        NodeExited,
        NodeEvicted,
        GroupCreated,
        GroupMoved,
        GroupStateChanged,
        GroupDeleted,
        SettingsChanged,
        ResourceAdded,
        ResourceChanged,
        ResourceRemoved,
        GroupPolicyChanged,
        GroupOfflineRequested,
        GroupOnlineRequested,
        ResourceRestartRequested,
        ResourceOnline,
        ResourceFailed,
        ResourceRestarted,
        ResourceOffline,
        ClusterStopping,
    ],
    Field(discriminator="type"),
]

EVENT_TYPES: dict[str, type[Event]] = {
    cls.model_fields["type"].default: cls
    for cls in AnyEvent.__origin__.__args__  # type: ignore[attr-defined]
}

# The current schema version of each type; a record with a lower `v` is upcast on read.
CURRENT_VERSION: dict[str, int] = {name: cls.model_fields["v"].default for name, cls in EVENT_TYPES.items()}
