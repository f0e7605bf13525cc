"""The Supervisor: starts the Quorum and a Node + ELM per server, and keeps them there.

Two placements:
- `local`: N logical nodes on the one (embedded) Ray node, ids n1..nN.
- `per-ray-node`: one Roster node per alive Ray node, pinned with hard node affinity. A
  pinned actor whose Ray node died never comes back, so a reconcile loop watches
  `ray.nodes()` and starts a Node + ELM on every new alive node (an added member, or any
  node with `auto_add`). A Ray node names its Roster node with a custom resource
  `roster-node-<id>`; without one the id comes from its address.

It is a detached actor on the head node, so a `--detach`ed cluster keeps running after the
`roster up` that made it returns.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors import messages as m
from roster.ray_runtime.actors import ElmActor, QuorumActor
from roster.ray_runtime.node_actor import NodeActor
from roster.ray_runtime.shell import NAMESPACE

log = logging.getLogger("roster.supervisor")
SUPERVISOR_NAME = "supervisor"
RECONCILE_PERIOD_S = 1.0
NODE_START_TIMEOUT_S = 60.0  # a Node's start on a Ray node that died meanwhile: retried next round
NODE_RESOURCE_PREFIX = "roster-node-"
HEAD_RESOURCE = {"node:__internal_head__": 0.001}
LEAVE_WAIT_S = 3.0
STOP_CLUSTER_WAIT_S = 15.0  # the leader commits the releases; past this, leave all the same
STOPPED_WAIT_S = 60.0  # every node's resources stopping (each bounded by its stop timeout)
STOPPED_POLL_S = 0.1


@dataclass
class SupervisorConfig:
    data_dir: str
    cluster_id: str
    cluster_name: str
    members: list[str]
    create: bool  # the first start of this data dir: the first member creates the cluster
    settings: dict[str, int]
    placement: str = "local"  # or "per-ray-node"
    nodes: int = 3
    http_host: str = "127.0.0.1"
    http_port: int | None = 8700
    token: str = ""
    auto_add: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def plan_moves(alive: list[tuple[str, str]], current: dict[str, str | None],
               passed_over: set[str]) -> dict[str, tuple[str, frozenset[str]]]:
    """Which Roster nodes to (re)start on which Ray node: Roster id -> (the Ray node, the Ray
    nodes that move passes over for good). `alive`: (Roster id, Ray node id) of every Ray
    node `ray.nodes()` calls alive; `current`: where each Roster node runs now.

    A host that crashed and came back at once shows up twice for a while: its new raylet, and
    its old one, which Ray still calls alive until its health checks time out (~15 s at Ray's
    defaults). The new one wins: a Ray node other than the current one that was never passed
    over is newer than it. Once passed over (left, or alive beside the one chosen), a Ray
    node is never chosen again: going back would kill the Node just started and pin a new
    one to a dead raylet, whose start hangs until Ray gives up on it (the bimodal rejoin of
    docs/benchmarks.md)."""
    candidates: dict[str, list[str]] = {}
    for roster_id, ray_node in sorted(alive):
        if ray_node not in passed_over:
            candidates.setdefault(roster_id, []).append(ray_node)
    moves: dict[str, tuple[str, frozenset[str]]] = {}
    for roster_id, ray_nodes in candidates.items():
        now_on = current.get(roster_id)
        newer = [n for n in ray_nodes if n != now_on]
        if not newer:
            continue  # where it runs is the only choice
        target = newer[0]
        left = {n for rid, n in alive if rid == roster_id and n != target}
        moves[roster_id] = (target, frozenset(left | ({now_on} if now_on is not None else set())))
    return moves


def roster_id_of(ray_node: dict[str, Any]) -> str:
    for res in ray_node.get("Resources", {}):
        if res.startswith(NODE_RESOURCE_PREFIX):
            return res[len(NODE_RESOURCE_PREFIX):]
    addr = ray_node.get("NodeManagerAddress", "0.0.0.0").replace(".", "-")
    return f"n-{addr}-{ray_node.get('NodeManagerPort', 0)}"


@ray.remote(num_cpus=0)
class Supervisor:
    def __init__(self, config: dict[str, Any]) -> None:
        self.cfg = SupervisorConfig(**config)
        self.started: dict[str, dict[str, Any]] = {}  # roster node id -> {"ray_node", "http"}
        self.port_index: dict[str, int] = {}
        self.passed_over: set[str] = set()  # Ray node ids never to start on again (`plan_moves`)
        self._loop: asyncio.Task | None = None
        self.stopping = False

    async def up(self) -> dict[str, Any]:
        QuorumActor.options(name=m.QUORUM, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                            max_restarts=-1, resources=HEAD_RESOURCE).remote(self.cfg.data_dir, self.cfg.settings)
        if self.cfg.placement == "local":
            for i, node_id in enumerate(self.cfg.members):
                await self._start_node(node_id, None, i)
        else:
            await self.reconcile()
            self._loop = asyncio.get_running_loop().create_task(self._reconcile_forever())
        return await self.describe()

    async def _start_node(self, node_id: str, ray_node: str | None, index: int) -> None:
        opts: dict[str, Any] = {"namespace": NAMESPACE, "lifetime": "detached", "get_if_exists": True}
        if ray_node is not None:
            opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(ray_node, soft=False)
        ElmActor.options(name=m.elm_addr(node_id), **opts).remote(node_id, self.cfg.data_dir, self.cfg.settings)
        create = None
        if self.cfg.create and node_id == self.cfg.members[0]:
            create = {"cluster_id": self.cfg.cluster_id, "name": self.cfg.cluster_name, "members": tuple(self.cfg.members)}
        port = None if self.cfg.http_port is None else self.cfg.http_port + index
        node = NodeActor.options(name=m.node_addr(node_id), **opts).remote(
            node_id, self.cfg.cluster_id, f"{self.cfg.data_dir}/secret.key", self.cfg.settings,
            list(self.cfg.members), create, self.cfg.http_host, port, self.cfg.token)
        info = await node.start.remote()
        self.started[node_id] = {"ray_node": ray_node, "http": info.get("http")}

    async def reconcile(self) -> list[str]:
        """Start a Node + ELM on every alive Ray node that has none (and may have one)."""
        started = []
        alive = [(roster_id_of(n), n["NodeID"]) for n in ray.nodes() if n.get("Alive")]
        current = {node_id: info["ray_node"] for node_id, info in self.started.items()}
        for node_id, (ray_node, passed) in sorted(plan_moves(alive, current, self.passed_over).items()):
            if node_id not in self.cfg.members:
                if not self.cfg.auto_add:
                    continue
                await self._add_member(node_id)
            self.passed_over |= passed
            if node_id in self.started:  # its old Ray node died (or is dying); its pinned actors with it
                await self._forget(node_id)
            index = self.port_index.setdefault(node_id, len(self.port_index))
            await asyncio.wait_for(self._start_node(node_id, ray_node, index), NODE_START_TIMEOUT_S)
            started.append(node_id)
        return started

    async def _add_member(self, node_id: str) -> None:
        for other in self.started:
            handle = ray.get_actor(m.node_addr(other), namespace=NAMESPACE)
            reply = await handle.admin.remote("add-node", {"node": node_id})
            if reply.ok or reply.status == 409:
                self.cfg.members.append(node_id)
                return

    async def _forget(self, node_id: str) -> None:
        for name in (m.node_addr(node_id), m.elm_addr(node_id)):
            try:
                ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
            except ValueError:
                pass
        self.started.pop(node_id, None)
        await asyncio.sleep(0)

    async def _reconcile_forever(self) -> None:
        while not self.stopping:
            try:
                await self.reconcile()
            except Exception:  # noqa: BLE001 - a failed round is retried on the next
                log.exception("reconcile failed")
            await asyncio.sleep(RECONCILE_PERIOD_S)

    async def placement(self) -> dict[str, str | None]:
        """Roster node id -> the Ray node id its Node + ELM were started on (None: local)."""
        return {node_id: info["ray_node"] for node_id, info in sorted(self.started.items())}

    async def describe(self) -> dict[str, Any]:
        return {"cluster_id": self.cfg.cluster_id, "name": self.cfg.cluster_name,
                "nodes": {k: v["http"] for k, v in sorted(self.started.items())}}

    async def down(self, leave: bool = True) -> dict[str, Any]:
        """Planned leave of every node (ClusterExit; the leader last), then stop every actor."""
        self.stopping = True
        if self._loop is not None:
            self._loop.cancel()
        replies: dict[str, Any] = {}
        stopped_groups: dict[str, Any] = {"ok": False, "error": "not asked (no planned leave)"}
        if leave:
            stopped_groups = await self._stop_cluster()
            replies = await self._leave_all()
            await self._wait_all_stopped()
        for node_id in list(self.started):
            try:
                await ray.get_actor(m.node_addr(node_id), namespace=NAMESPACE).shutdown.remote()
            except Exception:  # noqa: BLE001 - already gone
                pass
        return {"stop_cluster": stopped_groups, "left": replies}

    async def _stop_cluster(self) -> dict[str, Any]:
        """A planned stop of the whole cluster (issue 12 §2): every group goes offline once,
        with reason "cluster stopping", before the nodes leave; without it each leave would
        move the groups on to the nodes still up."""
        for node_id in self.started:
            try:
                handle = ray.get_actor(m.node_addr(node_id), namespace=NAMESPACE)
                reply = await asyncio.wait_for(handle.admin.remote("stop-cluster", {}), STOP_CLUSTER_WAIT_S)
            except Exception as exc:  # noqa: BLE001 - that node is gone: ask the next
                log.warning("stop-cluster via %s failed: %s", node_id, str(exc).splitlines()[0] if str(exc) else exc)
                continue
            if reply.ok:
                return {"ok": True, "seq": reply.seq}
            log.warning("stop-cluster via %s refused: %s", node_id, reply.error)
        return {"ok": False, "error": "no node could stop the cluster's groups; leaving all the same"}

    async def _wait_all_stopped(self) -> None:
        """Each node tells the others it left only once its resources stopped (bounded by their
        stop timeouts): wait for that before the actors are shut down."""
        deadline = asyncio.get_running_loop().time() + STOPPED_WAIT_S
        for node_id in list(self.started):
            while asyncio.get_running_loop().time() < deadline:
                try:
                    handle = ray.get_actor(m.node_addr(node_id), namespace=NAMESPACE)
                    status = await asyncio.wait_for(handle.status.remote(), LEAVE_WAIT_S)
                except Exception:  # noqa: BLE001 - gone
                    break
                if status["stopped"]:
                    break
                await asyncio.sleep(STOPPED_POLL_S)

    async def _leave_all(self) -> dict[str, Any]:
        statuses = {}
        for node_id in self.started:
            try:
                handle = ray.get_actor(m.node_addr(node_id), namespace=NAMESPACE)
                statuses[node_id] = await handle.status.remote()
            except Exception:  # noqa: BLE001
                continue
        leaders = [n for n, s in statuses.items() if s["role"] == "leader"]
        order = [n for n in statuses if n not in leaders] + leaders
        replies = {}
        for node_id in order:
            handle = ray.get_actor(m.node_addr(node_id), namespace=NAMESPACE)
            try:
                reply = await asyncio.wait_for(handle.leave.remote(), LEAVE_WAIT_S * 4)
                replies[node_id] = {"ok": reply.ok, "seq": reply.seq, "error": reply.error}
            except Exception as exc:  # noqa: BLE001
                replies[node_id] = {"ok": False, "error": str(exc).splitlines()[0]}
            await asyncio.sleep(0.05)
        return replies

    async def config(self) -> dict[str, Any]:
        return asdict(self.cfg) | {"token": "***"}
