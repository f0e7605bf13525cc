"""Every message the three actors exchange. Actors talk only through these.

Addresses are strings: `quorum`, `node:<id>`, `elm:<id>` (the Ray actor names too).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from events.record import Draft, Record

QUORUM = "quorum"


def node_addr(node_id: str) -> str:
    return f"node:{node_id}"


def elm_addr(node_id: str) -> str:
    return f"elm:{node_id}"


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)


class TimerFired(Message):
    key: str


# --- Quorum resource (S5–S8) -------------------------------------------------------------
class AcquireQuorum(Message):
    node: str
    sent_at: int
    proof: str  # HMAC of (node, sent_at) under the cluster secret


class QuorumGranted(Message):
    epoch: int
    lease_ms: int
    head_seq: int
    sent_at: int


class QuorumDenied(Message):
    owner: str | None
    epoch: int
    reason: str


class RenewLease(Message):
    node: str
    epoch: int
    sent_at: int


class LeaseRenewed(Message):
    epoch: int
    sent_at: int


class LeaseLost(Message):
    epoch: int
    owner: str | None


class ReleaseQuorum(Message):
    node: str
    epoch: int


class AppendEntries(Message):
    node: str
    epoch: int
    expected_seq: int
    drafts: tuple[Draft, ...]
    batch_id: str


class AppendAccepted(Message):
    batch_id: str
    records: tuple[Record, ...]


class AppendRefused(Message):
    batch_id: str
    reason: Literal["fenced", "conflict"]
    epoch: int
    head_seq: int


class ReadLog(Message):
    from_seq: int
    reply_to: str
    max_records: int


class LogRange(Message):
    records: tuple[Record, ...]
    head_seq: int


# --- Node <-> its EventLogManager ---------------------------------------------------------
class Propose(Message):
    epoch: int
    drafts: tuple[Draft, ...]
    batch_id: str


class Committed(Message):
    records: tuple[Record, ...]
    batch_id: str | None = None  # set when these records are the node's own proposal
    replaced: bool = False  # the replica was replaced by a full copy: these records start at seq 1


class ProposalFailed(Message):
    batch_id: str
    reason: str
    epoch: int


class ResendFrom(Message):
    """Node → its ELM: a Committed batch was lost between them (e.g. before the node started);
    send every record from `from_seq` on again."""

    from_seq: int


class CatchUp(Message):
    target_seq: int


class CaughtUp(Message):
    head_seq: int


class SendSync(Message):
    joiner: str
    their_seq: int
    their_hash: str
    seen_incarnation: int  # carried to the leader (JoinApproved): see JoinRequest


class SyncSent(Message):
    joiner: str
    mode: Literal["none", "delta", "full"]
    from_seq: int
    to_seq: int
    their_seq: int
    seen_incarnation: int


# --- ELM <-> ELM ----------------------------------------------------------------------------
class Replicate(Message):
    records: tuple[Record, ...]


class ReplicaSync(Message):
    """S17: the sponsor's copy for a joiner: the missing tail (delta) or the whole log (full)."""

    sponsor: str
    mode: Literal["none", "delta", "full"]
    records: tuple[Record, ...]


# --- Node <-> Node ---------------------------------------------------------------------------
class Discover(Message):
    node: str
    cluster_id: str


class DiscoverReply(Message):
    member: str
    leader: str | None
    epoch: int


class JoinRequest(Message):
    node: str
    cluster_id: str
    replica_seq: int
    replica_hash: str
    # The joiner's own incarnation as its replica shows it. Lower than the leader's view: the
    # joiner was admitted but never heard it (a lost reply), so this is the same join again and
    # the sync tells it; no second NodeJoined (invariant 5's one admission per join).
    seen_incarnation: int


class JoinChallenge(Message):
    sponsor: str
    nonce: str


class JoinResponse(Message):
    node: str
    mac: str
    nonce: str = ""  # the challenge it answers: an answer to a stale one is dropped, not refused


class JoinRefused(Message):
    sponsor: str
    reason: str


class JoinApproved(Message):
    joiner: str
    sponsor: str
    mode: Literal["none", "delta", "full"]
    from_seq: int
    to_seq: int
    their_seq: int
    seen_incarnation: int


class ForwardDrafts(Message):
    """A follower's decision that only the leader may append (e.g. a JoinRejected)."""

    drafts: tuple[Draft, ...]


class Heartbeat(Message):
    node: str
    epoch: int
    applied_seq: int
    sent_at: int
    fenced: bool = False  # its leader contact ran out: it stopped its groups and wants back in
    running: tuple[str, ...] = ()  # groups with a resource not provably stopped here (the stop proof)


class HeartbeatAck(Message):
    leader: str
    epoch: int
    committed_seq: int
    sent_at: int


class NotMember(Message):
    leader: str
    epoch: int


class RegroupPoll(Message):
    leader: str
    epoch: int
    round: int


class RegroupAck(Message):
    node: str
    epoch: int
    round: int
    sent_at: int


class ClusterExit(Message):
    node: str
    epoch: int
    forwarded: bool = False  # relayed once by a follower to its leader, never again


class EvictNotice(Message):
    node: str
    reason: str


# --- Node <-> its resource host (the shell that runs resources) -----------------------------
class ResourceStarted(Message):
    group: str
    resource: str
    attempt: int
    endpoint: str | None = None  # "host:port" a `process` resource with a port listens on


class ResourceFailed(Message):
    group: str
    resource: str
    attempt: int
    phase: Literal["start", "run", "probe"]  # did not start / exited / health check failed
    reason: str
    exit_code: int | None = None


class ResourceStopped(Message):
    group: str
    resource: str
    forced: bool = False  # SIGKILL (or ray.kill) was needed after the stop timeout


# --- Admin ----------------------------------------------------------------------------------
AdminOp = Literal[
    "add-node", "pause", "resume", "evict", "leave",
    "group-create", "group-move", "group-delete", "stop-cluster",
    "group-online", "group-offline", "group-apply", "resource-restart",
]


class AdminCommand(Message):
    op: AdminOp
    args: dict[str, Any]
    request_id: str
    reply_to: str
    hops: int = 0  # forwards so far: two nodes that each think the other leads must not loop


class AdminReply(Message):
    request_id: str
    ok: bool
    seq: int | None = None
    status: int = 200  # HTTP-style: 200, 404, 409, 422, 503
    error: str | None = None
    detail: str | None = None
    unchanged: bool = False  # ok, and nothing needed doing: nothing was appended for it
