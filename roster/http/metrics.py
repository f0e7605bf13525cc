"""`GET /metrics`: Prometheus text from a per-app CollectorRegistry.

One custom collector reads the replica at scrape time (nothing is counted on the hot path):
the feed keeps per-type event counts as it appends, the projections give epoch and node states.
Histograms (prometheus_client conventions, `_seconds` in the name): HTTP request duration by
route, method and status (a middleware here); and, when the runtime hands the app a
`MetricsSource` (the Ray node actor does: roster/ray_runtime/observer.py), heartbeat, failure
detection, failover and durable-append histograms, refreshed from other actors at scrape time.
docs/monitoring/README.md says what each one measures.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Iterable, Iterator, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from roster.latency import LatencyHistogram

from roster.http.errors import SEQ_HEADER
from roster.http.handlers import Ctx, check_query, ctx_of

NODE_STATES = ("Offline", "Joining", "Online", "Paused")
GROUP_STATES = ("Online", "Offline", "Failed")
REGISTRY = web.AppKey("roster_metrics_registry", CollectorRegistry)
SOURCE = web.AppKey("roster_metrics_source", object)
log = logging.getLogger("roster.http.metrics")

# Upper bounds in seconds: most reads answer in a few ms; ?min_seq may wait up to 30 s.
HTTP_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNTIMED_ROUTES = frozenset({"/v1/events/stream"})  # lives as long as its client: not a duration
UNMATCHED_ROUTE = "unmatched"  # every path with no route shares one label (bounded cardinality)
SCRAPE_REFRESH_TIMEOUT_S = 2.0  # a scrape waits this long for other actors' histograms


class MetricsSource(Protocol):
    """What a runtime adds to /metrics: its own collectors, refreshed before each scrape."""

    def collectors(self) -> Iterable[Any]: ...

    async def refresh(self) -> None: ...


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
        if feed.loaded:  # counts of the whole log: left out while a starting node loads its older records
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
        if feed.loaded:
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


class SnapshotCollector:
    """Histograms observed in other actors (LatencyHistogram copies), exposed as they were last
    fetched. `families` maps a metric name to (help, label names, [(label values, histogram)])."""

    def __init__(self) -> None:
        self.families: dict[str, tuple[str, tuple[str, ...], list[tuple[tuple[str, ...], LatencyHistogram]]]] = {}

    def set(self, name: str, doc: str, labels: tuple[str, ...],
            series: list[tuple[tuple[str, ...], LatencyHistogram]]) -> None:
        self.families[name] = (doc, labels, series)

    def collect(self) -> Iterator[Metric]:
        for name, (doc, labels, series) in sorted(self.families.items()):
            family = HistogramMetricFamily(name, doc, labels=list(labels))
            for values, h in series:
                family.add_metric(list(values), h.cumulative(), h.sum_s)
            yield family


def http_histogram() -> Histogram:
    return Histogram("roster_http_request_duration_seconds",
                     "HTTP requests this node answered: time from the request reaching the app to the answer "
                     "(event streams are not timed), by route template, method and status",
                     ["route", "method", "status"], registry=None, buckets=HTTP_BUCKETS_S)


def make_timing_middleware(hist: Histogram) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Outermost middleware: it sees the status the error middleware chose."""

    @web.middleware
    async def timing(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else UNMATCHED_ROUTE
        if route in UNTIMED_ROUTES:
            return await handler(request)
        started = time.perf_counter()

        def observe(status: int) -> None:
            hist.labels(route, request.method, str(status)).observe(time.perf_counter() - started)

        try:
            resp = await handler(request)
        except web.HTTPException as exc:  # 3xx raised by a handler (the error middleware passes them on)
            observe(exc.status)
            raise
        except asyncio.CancelledError:
            raise  # the client went away: there is no answer to time
        except Exception:
            observe(500)  # what aiohttp answers for an exception that got past the error middleware
            raise
        observe(resp.status)
        return resp

    return timing


def make_registry(ctx: Ctx, http_hist: Histogram | None = None, source: MetricsSource | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReplicaCollector(ctx))  # type: ignore[arg-type]
    if http_hist is not None:
        registry.register(http_hist)
    for collector in (source.collectors() if source is not None else ()):
        registry.register(collector)
    return registry


async def get_metrics(request: web.Request) -> web.Response:
    check_query(request, frozenset())
    source = request.app.get(SOURCE)
    if source is not None:
        try:
            await asyncio.wait_for(source.refresh(), SCRAPE_REFRESH_TIMEOUT_S)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - a slow or gone actor: serve what we have, say so in the log
            log.warning("metrics: other actors' histograms not refreshed (%s, limit %s s)",
                        type(exc).__name__, SCRAPE_REFRESH_TIMEOUT_S)
    body = generate_latest(request.app[REGISTRY])
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    resp.headers[SEQ_HEADER] = str(ctx_of(request).feed.seq)
    return resp
