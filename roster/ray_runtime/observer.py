"""What the Node actor's shell observes for operators: heartbeat, detection and failover times,
and the leader's view of each node's last heartbeat (issue 12 §1, §6).

Only the shell sees real time and real message delivery, so this lives here and not in
`actors/` (the cores stay sans-I/O). The node actor calls `after_step` after each core step
and `on_committed` for each batch of committed records; the HTTP app reads the histograms
(`collectors`, `refresh`) and the leader view (`leader_view`).

What each histogram measures (also in docs/monitoring/README.md):
- roster_heartbeat_round_trip_seconds — on a follower: from sending a Heartbeat to its
  HeartbeatAck reaching the core (the ack echoes the heartbeat's `sent_at`, so both ends
  are on the follower's own clock). The leader cannot time a round trip itself: the protocol
  gives it nothing to match an ack to the next heartbeat.
- roster_heartbeat_gap_seconds{node} — on the leader: the time between two heartbeats from
  one follower that its core accepted. What the miss rule compares with the interval.
- roster_node_down_detection_seconds — on the leader: from the last heartbeat its core
  accepted from a node to that node's NodeDown committing (reaching the leader's replica).
- roster_group_failover_duration_seconds{cause} — on the leader, from the committed records:
  from the NodeDown / NodeExited / NodeEvicted record to the GroupMoved record that gives the
  group a new owner (`ts` of each).
- roster_log_append_duration_seconds{log} — durable append of one batch, fsync included,
  measured in the ELM (log="replica") and, from the leader, the Quorum (log="quorum").
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily

from actors import messages as m
from actors.node_state import Following, LeaderState
from events.record import Record
from roster.http.handlers import unknown_leader_view
from roster.http.metrics import SnapshotCollector
from roster.latency import LatencyHistogram
from roster.ray_runtime.shell import Router, now_ms

# Upper bounds in seconds. Round trips on one host are ~1 ms; across a LAN a few ms.
RTT_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Gaps cluster at the interval (1 s by default; tests use 0.3 s): fine steps around it.
GAP_BUCKETS_S = (0.1, 0.25, 0.3, 0.35, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
# Detection is bounded by interval × misses + regroup timeout (6 s at the defaults).
DETECTION_BUCKETS_S = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 15.0, 30.0, 60.0)
FAILOVER_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DEPARTURE_CAUSES = {"NodeDown": "down", "NodeExited": "exit", "NodeEvicted": "evict"}
APPEND_METRIC = "roster_log_append_duration_seconds"
APPEND_HELP = ("Durable append of one batch to an event log, write and fsync included, measured around the "
               "append in the actor that owns the log (log=replica: this node's ELM; log=quorum: the quorum "
               "log, reported by the leader)")
log = logging.getLogger("roster.observer")
AppendSource = Callable[[], Any]  # returns an awaitable LatencyHistogram (a Ray ObjectRef)


def ts_ms(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


def iso_ms(now_ms: int) -> str:
    return datetime.fromtimestamp(now_ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class NodeObserver:
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.last_hb_ms: dict[str, int] = {}  # follower -> when this node, leading, last accepted its heartbeat
        self.departed_ms: dict[str, tuple[str, int]] = {}  # node -> (cause, record ts) until it rejoins
        self.rtt = Histogram("roster_heartbeat_round_trip_seconds",
                             "On a follower: from sending a Heartbeat to the leader's HeartbeatAck reaching its core "
                             "(both on the follower's clock: the ack echoes sent_at)",
                             registry=None, buckets=RTT_BUCKETS_S)
        self.gap = Histogram("roster_heartbeat_gap_seconds",
                             "On the leader: time between two heartbeats from one follower that the leader's core "
                             "accepted (the miss rule compares it with the interval)",
                             ["node"], registry=None, buckets=GAP_BUCKETS_S)
        self.detection = Histogram("roster_node_down_detection_seconds",
                                   "On the leader: from the last heartbeat its core accepted from a node to that "
                                   "node's NodeDown committing", registry=None, buckets=DETECTION_BUCKETS_S)
        self.failover = Histogram("roster_group_failover_duration_seconds",
                                  "On the leader, from committed records: from a node's NodeDown/NodeExited/"
                                  "NodeEvicted to the GroupMoved that gives its group a new owner, by cause",
                                  ["cause"], registry=None, buckets=FAILOVER_BUCKETS_S)
        self.snapshots = SnapshotCollector()
        self.core: Any = None  # the node's core, set once it exists (read only: role, leader)
        self.handles = Router()  # cached actor handles (a lookup is a GCS round trip)
        self.append_sources: dict[str, AppendSource] = {
            "replica": lambda: self._actor(m.elm_addr(node_id)).append_latency.remote(),
            "quorum": lambda: self._actor(m.QUORUM).append_latency.remote(),
        }

    def _actor(self, name: str) -> Any:
        handle = self.handles._handle(name)  # noqa: SLF001 - the shell's handle cache, reused as is
        if handle is None:
            raise LookupError(f"no actor {name}")
        return handle

    def leading(self) -> bool:
        return self.core is not None and self.core.role == "leader"

    # --- the node actor's hooks ------------------------------------------------------------------------

    def after_step(self, msg: m.Message, now: int, core: Any) -> None:
        """After the core stepped `msg` at `now` (ms). A metrics fault never stops the protocol."""
        try:
            self._after_step(msg, now, core)
        except Exception:  # noqa: BLE001 - logged; the core's step already happened and stands
            log.exception("%s: observing %s failed", self.node_id, type(msg).__name__)

    def on_committed(self, records: Iterable[Record], now: int, leading: bool) -> None:
        """New committed records reached this node's replica at `now` (ms)."""
        try:
            self._on_committed(records, now, leading)
        except Exception:  # noqa: BLE001 - logged; the replica has the records either way
            log.exception("%s: observing committed records failed", self.node_id)

    def _after_step(self, msg: m.Message, now: int, core: Any) -> None:
        if core.role != "leader" and self.last_hb_ms:
            self.last_hb_ms.clear()  # stepped down: a former leader's times would go stale silently
        state = core.role_state  # the role's own state object (actors/node_state.py)
        if isinstance(msg, m.Heartbeat):
            if isinstance(state, LeaderState) and state.last_hb.get(msg.node) == now:  # accepted
                prev = self.last_hb_ms.get(msg.node)
                if prev is not None and now >= prev:
                    self.gap.labels(msg.node).observe((now - prev) / 1000)
                self.last_hb_ms[msg.node] = now
        elif isinstance(msg, m.HeartbeatAck):
            heard_at = state.leader_heard_at if isinstance(state, Following) else None
            if core.leader == msg.leader and heard_at == now and now >= msg.sent_at:  # accepted
                self.rtt.observe((now - msg.sent_at) / 1000)

    def _on_committed(self, records: Iterable[Record], now: int, leading: bool) -> None:
        for r in records:
            kind = r.event.type
            if kind in DEPARTURE_CAUSES and r.node is not None:
                self.departed_ms[r.node] = (DEPARTURE_CAUSES[kind], ts_ms(r.ts))
                last = self.last_hb_ms.pop(r.node, None)
                if leading and kind == "NodeDown" and last is not None and now >= last:
                    self.detection.observe((now - last) / 1000)
            elif kind == "NodeJoined" and r.node is not None:
                self.departed_ms.pop(r.node, None)
            elif kind == "GroupMoved" and leading:
                self._group_moved(r)

    def _group_moved(self, r: Record) -> None:
        ev = r.event
        departed = self.departed_ms.get(ev.from_node) if ev.from_node else None  # type: ignore[attr-defined]
        if departed is not None and ev.to_node is not None:  # type: ignore[attr-defined]
            cause, since = departed
            self.failover.labels(cause).observe(max(ts_ms(r.ts) - since, 0) / 1000)

    # --- the HTTP app's ports ------------------------------------------------------------------------------

    def leader_view_here(self, node: str) -> dict[str, Any]:
        """This node's answer, when it is the leader; otherwise it says it is not."""
        now = now_ms()
        if not self.leading():
            return unknown_leader_view(f"{self.node_id} is not the leader", self.core.leader if self.core else None)
        if node == self.node_id:
            return unknown_leader_view("the leader sends itself no heartbeats", self.node_id)
        last = self.last_hb_ms.get(node)
        if last is None:
            return unknown_leader_view(f"no heartbeat from {node} since {self.node_id} began leading", self.node_id)
        return {"leader": self.node_id, "last_heartbeat_age_ms": max(now - last, 0), "as_of": iso_ms(now),
                "detail": None}

    async def leader_view(self, node: str) -> dict[str, Any]:
        """The HTTP app's port: answered here when leading, else asked of the leader's node actor."""
        leader = self.core.leader if self.core is not None else None
        if self.leading() or leader is None:
            return self.leader_view_here(node) if self.leading() else unknown_leader_view("no leader known")
        try:
            return await self._actor(m.node_addr(leader)).leader_view.remote(node)
        except Exception as exc:  # noqa: BLE001 - the leader is gone or not reachable: unknown, say why
            return unknown_leader_view(f"leader {leader} not reachable ({type(exc).__name__})", leader)

    def collectors(self) -> list[Any]:
        return [self.rtt, self.gap, self.detection, self.failover, self.snapshots, _AgeCollector(self)]

    async def refresh(self) -> None:
        """Fetch the durable-append histograms from the actors that own the logs."""
        series: list[tuple[tuple[str, ...], LatencyHistogram]] = []
        names = [n for n in self.append_sources if n != "quorum" or self.leading()]
        results = await asyncio.gather(*(self.append_sources[n]() for n in names), return_exceptions=True)
        for name, result in zip(names, results):
            if isinstance(result, LatencyHistogram):
                series.append(((name,), result))
        self.snapshots.set(APPEND_METRIC, APPEND_HELP, ("log",), series)


class _AgeCollector:
    """roster_heartbeat_age_seconds{node}: the leader's view at scrape time (only the leader has one)."""

    def __init__(self, observer: NodeObserver) -> None:
        self.observer = observer

    def collect(self) -> Iterable[Any]:
        family = GaugeMetricFamily("roster_heartbeat_age_seconds",
                                   "On the leader: time since its core accepted the last heartbeat from each follower",
                                   labels=["node"])
        if self.observer.leading():
            now = now_ms()
            for node, last in sorted(self.observer.last_hb_ms.items()):
                family.add_metric([node], max(now - last, 0) / 1000)
        yield family
