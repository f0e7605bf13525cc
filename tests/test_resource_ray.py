"""Resources on real Ray (issue 10 §3 `ray_actor`, issue 12 §3 the watchdog; invariant 4:
never two live copies of a resource). One shared `ray.cluster_utils.Cluster`: a head and
two workers, each worker with a host actor that runs a ResourceHost, as a node actor does."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]
ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from actors import messages as m  # noqa: E402
from actors.effects import SetRunDeadline, StartResource, StopResource  # noqa: E402
from events.resource_spec import HealthCheck, ResourceSpec  # noqa: E402
from roster.resources.host import ResourceHost  # noqa: E402
from tests.ray_helpers import FAST_HEALTH, wait_for  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COUNTER = ResourceSpec(name="counter", type="ray_actor", health=HealthCheck(interval_ms=200, timeout_ms=2000),
                       params={"cls": "examples.counter:Counter", "health_method": "ping", "kwargs": {"start": 10}},
                       stop_timeout_ms=2000)
SLEEPER = ResourceSpec(name="svc", type="process", params={"argv": ["sleep", "600"]},
                       health=HealthCheck(interval_ms=200, timeout_ms=1000))
LEASE_MS = 800  # the run deadline a host renews every RENEW_MS
RENEW_MS = 100


@ray.remote(num_cpus=0)
class HostActor:
    """A ResourceHost in a Ray actor process, renewing its run deadline while its loop runs."""

    def __init__(self, data_dir: str) -> None:
        self.reports: list = []
        self.host = ResourceHost("test", Path(data_dir), self.reports.append)
        self._renewer = None

    async def execute(self, effect) -> None:
        self.host.execute(effect)

    async def renew_every(self, lease_ms: int, period_ms: int) -> None:
        async def loop():
            while True:
                self.host.set_deadline(int(time.time() * 1000) + lease_ms)
                await asyncio.sleep(period_ms / 1000)
        self._renewer = asyncio.get_running_loop().create_task(loop())

    async def take_reports(self) -> list:
        out, self.reports[:] = list(self.reports), []
        return out

    async def pids(self) -> dict:
        return {"actor": os.getpid(), **{f"{g}/{r}": getattr(e.runner, "pid", None)
                                         for (g, r), e in self.host.entries.items()}}

    async def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    os.environ["RAY_AUTH_MODE"] = "disabled"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": FAST_HEALTH})
    workers = {name: c.add_node(num_cpus=1, resources={name: 1}) for name in ("host_a", "host_b")}
    ray.init(address=c.address, namespace="roster", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}"}})
    data = tmp_path_factory.mktemp("res")
    hosts = {name: HostActor.options(resources={name: 0.01}).remote(str(data / name)) for name in workers}
    yield {"cluster": c, "workers": workers, "hosts": hosts}
    ray.shutdown()
    c.shutdown()


def reports_until(host, kind: type, timeout_s: float = 30) -> m.Message:
    seen: list = []

    def found():
        seen.extend(ray.get(host.take_reports.remote(), timeout=10))
        return next((x for x in seen if isinstance(x, kind)), None)
    return wait_for(found, timeout_s, f"{kind.__name__} (got {seen})")


def live_copies(name: str) -> int:
    return sum(1 for a in ray.util.list_named_actors(all_namespaces=True)
               if a["name"] == name and a["namespace"] == "roster")


def test_invariant4_ray_actor_singleton_found_by_name_pinned_and_moved(cluster):
    a, b = cluster["hosts"]["host_a"], cluster["hosts"]["host_b"]
    ray.get(a.execute.remote(StartResource("web", COUNTER, 0)))
    started = reports_until(a, m.ResourceStarted)
    assert (started.group, started.resource) == ("web", "counter")
    counter = ray.get_actor("web/counter", namespace="roster")
    assert ray.get(counter.incr.remote(), timeout=10) == 11
    assert ray.get(counter.where.remote(), timeout=10)["ray_node"] == ray.get(a.node_id.remote())
    # the group moves to b: b's start finds a's copy, kills it, waits for Ray to free the name
    ray.get(b.execute.remote(StartResource("web", COUNTER, 0)))
    reports_until(b, m.ResourceStarted)
    assert live_copies("web/counter") == 1
    moved = ray.get_actor("web/counter", namespace="roster")
    assert ray.get(moved.where.remote(), timeout=10)["ray_node"] == ray.get(b.node_id.remote())
    assert ray.get(moved.get.remote(), timeout=10) == 10, "a new copy (memory state starts again)"
    failed = reports_until(a, m.ResourceFailed)  # a's host sees its copy die and says so
    assert failed.phase == "run"
    ray.get(a.execute.remote(StopResource("web", "counter")))
    reports_until(a, m.ResourceStopped)
    ray.get(b.execute.remote(StopResource("web", "counter")))
    reports_until(b, m.ResourceStopped)
    assert live_copies("web/counter") == 0


def test_ray_actor_that_cannot_be_imported_is_a_start_failure(cluster):
    a = cluster["hosts"]["host_a"]
    bad = COUNTER.model_copy(update={"name": "nope", "params": {**COUNTER.params, "cls": "examples.counter:Nope"}})
    ray.get(a.execute.remote(StartResource("web", bad, 0)))
    failed = reports_until(a, m.ResourceFailed)
    assert failed.phase == "start" and "cannot import" in failed.reason


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


def test_issue12_sigstopped_node_actor_process_service_is_dead_by_its_deadline(cluster):
    a = cluster["hosts"]["host_a"]
    ray.get(a.renew_every.remote(LEASE_MS, RENEW_MS))
    ray.get(a.execute.remote(StartResource("g", SLEEPER, 0)))
    reports_until(a, m.ResourceStarted)
    pids = ray.get(a.pids.remote())
    actor_pid, svc = pids["actor"], pids["g/svc"]
    time.sleep(2 * LEASE_MS / 1000)
    assert _pid_alive(svc), "renewed while the actor's loop runs"
    os.kill(actor_pid, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        while _pid_alive(svc) and time.monotonic() - t0 < 10:
            time.sleep(0.01)
        dead_after_s = time.monotonic() - t0
    finally:
        os.kill(actor_pid, signal.SIGCONT)
    assert not _pid_alive(svc) and dead_after_s <= LEASE_MS / 1000 + 0.5, dead_after_s
    failed = reports_until(a, m.ResourceFailed)
    assert failed.phase == "run" and "deadline" in failed.reason


def test_owner_ray_node_removed_its_process_dies_and_the_actor_name_frees(cluster):
    b = cluster["hosts"]["host_b"]
    ray.get(b.execute.remote(StartResource("g2", SLEEPER, 0)))
    ray.get(b.execute.remote(StartResource("g2", COUNTER, 0)))
    reports_until(b, m.ResourceStarted)
    reports_until(b, m.ResourceStarted)
    pids = ray.get(b.pids.remote())
    svc, holder = pids["g2/svc"], pids["actor"]
    cluster["cluster"].remove_node(cluster["workers"]["host_b"], allow_graceful=False)
    wait_for(lambda: not _pid_alive(holder), 30, "the removed node's host actor process to end")
    wait_for(lambda: not _pid_alive(svc), 5, "the service of the removed node to die with it")
    a = cluster["hosts"]["host_a"]
    ray.get(a.execute.remote(StartResource("g2", COUNTER, 0)))
    reports_until(a, m.ResourceStarted, timeout_s=60)
    assert live_copies("g2/counter") == 1
    ray.get(a.execute.remote(StopResource("g2", "counter")))
    reports_until(a, m.ResourceStopped)
