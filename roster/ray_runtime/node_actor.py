"""The Node actor: the cluster service on one server, and its HTTP endpoint.

It steps `NodeCore`, keeps a `ReplicaFeed` of the committed log for HTTP reads, runs its
resource groups' resources through a `ResourceHost` (the core's StartResource /
StopResource / SetRunDeadline; the host's reports go back to the core as messages), and
turns admin calls into `AdminCommand`s answered by the leader.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import ray

from actors import messages as m
from actors.effects import SetRunDeadline, StartResource, StopResource
from actors.node import CreateSpec, NodeCore, NodeIdentity
from actors.node_state import ACTIVE_ROLES
from actors.settings import ProtocolSettings
from roster.datadir import read_secret
from roster.http.admin_routes import ADMIN_TIMEOUT_S
from roster.http.feed import NodeHealth, ReplicaFeed
from roster.ray_runtime.observer import NodeObserver
from roster.ray_runtime.shell import NAMESPACE, EffectRunner, now_ms
from roster.resources.host import ResourceHost

log = logging.getLogger("roster.node")
ELM_LOOKUP_TIMEOUT_MS = 30_000
ELM_LOOKUP_RETRY_S = 0.1
HISTORY_CHUNK_RECORDS = 2000  # records per call while a started node loads its older records
HISTORY_LOAD_WAIT_S = 5.0  # a node that has not joined by then loads its older records anyway
RESOURCE_EFFECTS = (StartResource, StopResource, SetRunDeadline)


@ray.remote(num_cpus=0)
class NodeActor:
    def __init__(self, node_id: str, cluster_id: str, secret_file: str, settings: dict[str, Any],
                 peers: list[str], create: dict[str, Any] | None = None,
                 http_host: str = "127.0.0.1", http_port: int | None = None, token: str | None = None) -> None:
        self.node_id = node_id
        self.me = m.node_addr(node_id)
        self.settings = ProtocolSettings(**settings)
        self.identity = NodeIdentity(node_id, cluster_id, read_secret(Path(secret_file)), tuple(peers))
        self.create = CreateSpec(**create) if create else None
        self.http_host, self.http_port, self.token = http_host, http_port, token
        self.core: NodeCore | None = None
        self.shell: EffectRunner | None = None
        self.feed = ReplicaFeed(node_id)
        self.groups: dict[str, int] = {}  # group -> when it started here (ms)
        self.host = ResourceHost(node_id, Path(secret_file).parent / "nodes" / node_id, self._resource_report,
                                 core_now_ms=now_ms, advertise_host=ray.util.get_node_ip_address())
        self.pending: dict[str, asyncio.Future] = {}
        self.stopped: str | None = None
        self.committed_seq = 0
        self._runner = None
        self._history_task: asyncio.Task | None = None
        self._joined = asyncio.Event()  # set once the core is in an active role (the join is over)
        self.http_url: str | None = None
        self.observer = NodeObserver(node_id)  # metrics and the leader's heartbeat view (issue 12)

    async def start(self) -> dict[str, Any]:
        """S14: load the local replica (from this node's ELM), bring no group online, then join."""
        elm = await self._find_elm()
        state = await elm.replica_state.remote()  # a copy: Ray passes it by value
        # The core and the HTTP feed start from the folded state (each its own copy), so a
        # start costs the same at any log length; the feed loads the records afterwards.
        self.feed = ReplicaFeed.from_state(self.node_id, state.copy())
        self.core = NodeCore(self.identity, self.settings, entropy=os.urandom(16), create=self.create, view=state)
        self.observer.core = self.core
        self.shell = EffectRunner(self.me, self._step, on_group=self._group, on_stop=self._stopped,
                                  local={"AdminReply": self._admin_reply})
        self.shell.run(self.core.start(now_ms()))
        if self.http_port is not None:
            await self._start_http()
        self._history_task = asyncio.get_running_loop().create_task(self._load_history(elm))
        return {"node": self.node_id, "http": self.http_url, "pid": os.getpid()}

    async def _load_history(self, elm: Any) -> None:
        """The feed's records before its start, from the ELM in chunks (neither actor's loop
        is held for long), folded between them, once the node has joined (the ELM is busy with
        the join's sync before that) or HISTORY_LOAD_WAIT_S after the start at the latest.
        A replaced replica ends the load (S17)."""
        try:
            await asyncio.wait_for(self._joined.wait(), HISTORY_LOAD_WAIT_S)
        except asyncio.TimeoutError:
            pass
        try:
            while (todo := self.feed.history_to_load) is not None:
                first, last = todo
                chunk = await elm.records_between.remote(first, min(last, first + HISTORY_CHUNK_RECORDS - 1))
                if self.feed.history_to_load != todo:
                    continue  # replaced meanwhile: the load is gone or starts afresh
                if not chunk:
                    raise ValueError(f"the ELM has no records from seq {first}")
                self.feed.load_history(chunk)
                await asyncio.sleep(0)
        except ValueError as exc:  # the ELM's history changed under the load (a full copy, S17)
            log.warning("%s: older records not loaded (%s); reads of them wait for the replaced replica",
                        self.node_id, exc)
        except ray.exceptions.RayError as exc:  # a dead ELM stops the node anyway
            log.warning("%s: older records not loaded: %s", self.node_id, str(exc).splitlines()[0])

    async def _find_elm(self) -> Any:
        """The ELM is created just before us; its name may take a moment to register."""
        deadline = now_ms() + ELM_LOOKUP_TIMEOUT_MS
        while True:
            try:
                return ray.get_actor(m.elm_addr(self.node_id), namespace=NAMESPACE)
            except ValueError:
                if now_ms() > deadline:
                    raise
                await asyncio.sleep(ELM_LOOKUP_RETRY_S)

    def _step(self, msg: m.Message, now: int, sender: str) -> list:
        assert self.core is not None
        if isinstance(msg, m.Committed):
            if msg.replaced:
                self.feed.replace(list(msg.records))
            else:
                self.feed.append(list(msg.records))
                self.observer.on_committed(msg.records, now, self.observer.leading())
        elif isinstance(msg, m.HeartbeatAck):
            self.committed_seq = max(self.committed_seq, msg.committed_seq)
        effects = self.core.step(msg, now, sender)
        self.observer.after_step(msg, now, self.core)
        if self.core.role in ACTIVE_ROLES and not self._joined.is_set():
            self._joined.set()
        # Resource effects go to the host at once (a run deadline must not queue behind sends).
        for e in effects:
            if isinstance(e, RESOURCE_EFFECTS):
                self.host.execute(e)
        return [e for e in effects if not isinstance(e, RESOURCE_EFFECTS)]

    def _group(self, group: str, start: bool) -> None:
        """StartGroup / StopGroup: the group began here / its last resource is provably stopped.
        The resources themselves are the core's StartResource / StopResource (group_runner)."""
        if start:
            self.groups[group] = now_ms()
            log.info("%s: group %s online", self.node_id, group)
        else:
            self.groups.pop(group, None)
            log.info("%s: group %s offline", self.node_id, group)

    def _resource_report(self, msg: m.Message) -> None:
        """The host's ResourceStarted / ResourceFailed / ResourceStopped, to the core."""
        if self.shell is not None:
            self.shell.deliver(self.me, msg)

    async def _stopped(self, reason: str) -> None:
        self.stopped = reason
        log.warning("%s: cluster service stopped: %s", self.node_id, reason)
        await self.host.stop_all()  # a node out of the cluster runs nothing (S8c, S20)

    def _admin_reply(self, msg: m.Message) -> bool:
        fut = self.pending.pop(msg.request_id, None)  # type: ignore[attr-defined]
        if fut is not None and not fut.done():
            fut.set_result(msg)
        return True

    async def deliver(self, sender: str, msg: m.Message) -> None:
        if self.shell is not None:
            self.shell.deliver(sender, msg)

    async def admin(self, op: str, args: dict[str, Any]) -> m.AdminReply:
        """An admin command through this node: it goes to the leader; the answer comes back here."""
        request_id = uuid.uuid4().hex
        if self.shell is None:
            return m.AdminReply(request_id=request_id, ok=False, status=503, error="starting", detail="node not started")
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = fut
        try:
            cmd = m.AdminCommand(op=op, args=args, request_id=request_id, reply_to=self.me)  # type: ignore[arg-type]
        except ValueError as exc:
            self.pending.pop(request_id, None)
            return m.AdminReply(request_id=request_id, ok=False, status=422, error="invalid_command", detail=str(exc).splitlines()[0])
        self.shell.deliver(self.me, cmd)
        try:
            return await asyncio.wait_for(fut, ADMIN_TIMEOUT_S)
        except asyncio.TimeoutError:
            self.pending.pop(request_id, None)
            return m.AdminReply(request_id=request_id, ok=False, status=503, error="timeout",
                                detail=f"no answer from the leader within {ADMIN_TIMEOUT_S:g} s")

    def health(self) -> NodeHealth:
        core = self.core
        return NodeHealth(self.node_id, core.role if core else "starting", core.leader if core else None,
                          core.epoch if core else 0, self.feed.seq, max(self.committed_seq, self.feed.seq))

    async def status(self) -> dict[str, Any]:
        core = self.core
        mv = self.feed.state.membership
        me = mv.nodes.get(self.node_id)
        return {"node": self.node_id, "role": core.role if core else "starting", "leader": core.leader if core else None,
                "epoch": core.epoch if core else 0, "seq": self.feed.seq, "hash": self.feed.state.hash,
                "state": me.state if me else "Offline", "running": sorted(self.groups), "http": self.http_url,
                "stopped": self.stopped, "digest": self.feed.state.digest(), "resources": self.host.status()}

    async def leader_view(self, node: str) -> dict[str, Any]:
        """Asked by another node's HTTP app: this node's view, as leader, of `node`'s last heartbeat."""
        return self.observer.leader_view_here(node)

    async def leave(self) -> m.AdminReply:
        return await self.admin("leave", {"node": self.node_id})

    async def _start_http(self) -> None:
        try:
            from aiohttp import web

            from roster.http.app import create_app
        except ImportError as exc:  # the HTTP app is optional until it lands
            log.warning("%s: no HTTP endpoint: %s", self.node_id, exc)
            return
        app = create_app(self.feed, admin=self.admin, health=self.health, token=self.token or "",
                         metrics_source=self.observer, leader_view=self.observer.leader_view)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.http_host, self.http_port)
        await site.start()
        self.http_url = f"http://{self.http_host}:{self.http_port}"

    async def shutdown(self) -> None:
        if self._history_task is not None:
            self._history_task.cancel()
        if self.shell is not None:
            self.shell.cancel_timers()
        await self.host.stop_all()
        if self._runner is not None:
            await self._runner.cleanup()
