"""Shared by the HTTP and CLI-over-HTTP tests: real event sequences, a simulated cluster behind
the AdminPort, and ways to serve the app (in-process test client, or a real TCP port on a
background thread for the CLI and schemathesis)."""

from __future__ import annotations

import asyncio
import threading
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, AsyncIterator, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actors import messages as m
from actors.node import CreateSpec
from events.record import Record
from roster.http.app import create_app, serve
from roster.http.feed import NodeHealth, ReplicaFeed
from roster.sim.scenario import Scenario, sim_settings
from roster.sim.world import World

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SIM_NODES = ("n1", "n2", "n3", "n4", "n5")
SETTLE_MS = 3_000  # virtual time for a fresh simulated cluster to form and join everyone
ADMIN_STEP_MS = 100  # the simulated world advances in steps this long while an admin command runs
ADMIN_WAIT_MS = 3_000  # virtual time an admin command may take before the port gives up (503)


@lru_cache(maxsize=4)
def sim_records(seed: int = 1, nodes: int = 5, duration_ms: int = 8_000) -> tuple[Record, ...]:
    """The quorum log of a short fault-free simulated run (real cores, real records)."""
    scenario = Scenario(seed, nodes, (), duration_ms)
    scenario.run()
    return tuple(scenario.world.qdisk.records)


def static_health(feed: ReplicaFeed, role: str = "follower", committed_extra: int = 0) -> Callable[[], NodeHealth]:
    def health() -> NodeHealth:
        view = feed.state.membership
        return NodeHealth(feed.node_id, role, view.leader, view.epoch, feed.seq, feed.seq + committed_extra)

    return health


async def refuse_admin(op: str, args: dict[str, Any]) -> m.AdminReply:
    return m.AdminReply(request_id="none", ok=False, status=503, error="no_leader", detail="no leader in this test")


class SimCluster:
    """A live simulated cluster behind the AdminPort: commands go to a node of the World, the
    world runs until the reply comes, and the new quorum records reach the feed (at once, or
    after `feed_delay_s` of real time, to exercise ?min_seq)."""

    def __init__(self, seed: int = 7, via: str = "n1", feed_delay_s: float = 0.0) -> None:
        self.world = World(seed=seed, settings=sim_settings())
        self.via, self.feed_delay_s, self.requests = via, feed_delay_s, 0
        for n in SIM_NODES:
            self.world.add_server(n)
        self.world.start_quorum()
        self.world.start_server(SIM_NODES[0], create=CreateSpec("sim-cluster", "http-test", SIM_NODES))
        for i, n in enumerate(SIM_NODES[1:]):
            self.world.schedule(50 + 50 * i, lambda n=n: self.world.start_server(n))
        self.world.run_until(SETTLE_MS)
        self.feed = ReplicaFeed.from_records(via, self.world.qdisk.records)

    def sync(self) -> None:
        self.feed.append(self.world.qdisk.records[self.feed.seq:])

    def run(self, ms: int) -> None:
        self.world.run_until(self.world.elapsed + ms)
        self.sync()

    async def admin(self, op: str, args: dict[str, Any]) -> m.AdminReply:
        self.requests += 1
        rid = f"http-{self.requests}"
        self.world.admin(self.via, op, rid, **args)
        deadline = self.world.elapsed + ADMIN_WAIT_MS
        while rid not in self.world.admin_replies and self.world.elapsed < deadline:
            self.world.run_until(self.world.elapsed + ADMIN_STEP_MS)
        if self.feed_delay_s > 0:
            asyncio.get_running_loop().call_later(self.feed_delay_s, self.sync)
        else:
            self.sync()
        return self.world.admin_replies.get(rid) or m.AdminReply(
            request_id=rid, ok=False, status=503, error="no_answer", detail="the simulated leader did not answer")

    def health(self) -> NodeHealth:
        s = self.world.servers[self.via]
        role = s.node.role if s.up and s.node is not None else "stopped"
        view = self.feed.state.membership
        return NodeHealth(self.via, role, view.leader, view.epoch, self.feed.seq, len(self.world.qdisk.records))

    def app(self) -> web.Application:
        return create_app(self.feed, admin=self.admin, health=self.health, token=TOKEN)


@asynccontextmanager
async def client_for(app: web.Application) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(app)) as client:
        yield client


class LiveServer:
    """The app on a real TCP port of 127.0.0.1, served by its own event loop on a thread.

    `make_app` runs on that loop (the feed and the simulated world belong to it)."""

    def __init__(self, make_app: Callable[[], web.Application]) -> None:
        self.make_app = make_app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.port = 0

    def __enter__(self) -> LiveServer:
        self.thread.start()
        self.runner, self.port = self.call(self._start())
        return self

    async def _start(self) -> tuple[web.AppRunner, int]:
        return await serve(self.make_app(), "127.0.0.1", 0)

    def call(self, coro: Any, timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def in_loop(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return fn()

        return self.call(run())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        if self.runner is not None:
            self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
