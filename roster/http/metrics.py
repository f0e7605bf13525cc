"""`GET /metrics`: Prometheus text from a per-app CollectorRegistry.

One custom collector reads the replica at scrape time (nothing is counted on the hot path):
the feed keeps per-type event counts as it appends, the projections give epoch and node states.
"""

from __future__ import annotations

from typing import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from roster.http.errors import SEQ_HEADER
from roster.http.handlers import Ctx, check_query, ctx_of

NODE_STATES = ("Offline", "Joining", "Online", "Paused")
GROUP_STATES = ("Online", "Offline", "Failed")
REGISTRY = web.AppKey("roster_metrics_registry", CollectorRegistry)


class ReplicaCollector:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        feed, health = self.ctx.feed, self.ctx.health()
        node = {"node": feed.node_id}
        view = feed.state.membership
        yield _counter("roster_events_appended", "Events applied to this node's replica (its seq)", feed.seq, node)
        yield _gauge("roster_replica_seq", "The seq this node's replica has applied", feed.seq, node)
        yield _gauge("roster_replica_lag", "Committed events this replica has not applied yet",
                     health.as_dict()["replica_lag"], node)
        yield _counter("roster_heartbeat_misses", "HeartbeatMissed events in the log",
                       feed.type_counts["HeartbeatMissed"], node)
        yield _counter("roster_regroups", "Regrouped events in the log", feed.type_counts["Regrouped"], node)
        yield _gauge("roster_epoch", "The current epoch (fencing token) in this replica's view", view.epoch, node)
        yield _gauge("roster_is_leader", "1 when this node leads the cluster", int(health.role == "leader"), node)
        by_state = GaugeMetricFamily("roster_nodes", "Members by state in this replica's view", labels=["state"])
        for state in NODE_STATES:
            by_state.add_metric([state], sum(1 for n in view.nodes.values() if n.state == state))
        yield by_state
        groups = GaugeMetricFamily("roster_groups", "Resource groups by state", labels=["state"])
        for state in GROUP_STATES:
            groups.add_metric([state], sum(1 for g in view.groups.values() if g.state == state))
        yield groups
        events = CounterMetricFamily("roster_events", "Events in the log by type", labels=["type"])
        for type_, count in sorted(feed.type_counts.items()):
            events.add_metric([type_], count)
        yield events


def _gauge(name: str, doc: str, value: float, labels: dict[str, str]) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=list(labels))
    g.add_metric(list(labels.values()), value)
    return g


def _counter(name: str, doc: str, value: float, labels: dict[str, str]) -> CounterMetricFamily:
    c = CounterMetricFamily(name, doc, labels=list(labels))
    c.add_metric(list(labels.values()), value)
    return c


def make_registry(ctx: Ctx) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReplicaCollector(ctx))  # type: ignore[arg-type]
    return registry


async def get_metrics(request: web.Request) -> web.Response:
    check_query(request, frozenset())
    body = generate_latest(request.app[REGISTRY])
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    resp.headers[SEQ_HEADER] = str(ctx_of(request).feed.seq)
    return resp
