"""The `ray_actor` resource type: an HA singleton as a named Ray actor.

`module:Class` is created as `<group>/<resource>` in namespace `roster`, pinned to the
owner's Ray node (NodeAffinitySchedulingStrategy, soft=False), with `max_restarts=0`: Ray
never brings it back by itself, the cluster decides where it runs. Any Ray client finds
it with `ray.get_actor("<group>/<resource>", namespace="roster")`.

Never two live copies under one name: Ray's name registry (the GCS) holds one actor per
name, and a start that finds the name taken (a copy left by an old owner that was proven
stopped, or not yet marked dead after its node died) kills that copy and waits until Ray
reports it dead before creating the new one. A stop asks the actor to exit
(`__ray_terminate__`), then `ray.kill`s it after the stop timeout, and returns once Ray
reports the name free.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from events.resource_spec import ResourceSpec
from actors.resource_types import RayActorParams, params_of
from roster.resources.base import Ended, Runner, StartFailed

NAMESPACE = "roster"
DEAD_POLL_S = 0.05
READY_METHOD = "__ray_ready__"  # every actor has it: answers once __init__ has run


def actor_name(group: str, resource: str) -> str:
    return f"{group}/{resource}"


def load_class(path: str) -> Any:
    module_name, _, cls_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, cls_name)
    except (ImportError, AttributeError) as exc:
        raise StartFailed(f"cannot import {path!r}: {exc}") from None


def _live(name: str) -> Any | None:
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None


async def wait_dead(name: str, timeout_ms: int) -> bool:
    """True once Ray has no live actor under `name`; False if `timeout_ms` passed first."""
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout_ms / 1000
    while _live(name) is not None:
        if loop.time() >= until:
            return False
        await asyncio.sleep(DEAD_POLL_S)
    return True


class RayActorRunner(Runner):
    def __init__(self, group: str, spec: ResourceSpec) -> None:
        super().__init__(group, spec)
        self.params: RayActorParams = params_of(spec)  # type: ignore[assignment]
        self.name = actor_name(group, spec.name)
        self.handle: Any = None

    async def start(self, deadline_mono_ms: int | None) -> None:
        cls = load_class(self.params.cls)
        actor_cls = cls if hasattr(cls, "options") and hasattr(cls, "remote") else ray.remote(cls)
        old = _live(self.name)
        if old is not None:  # an old owner's copy: it must be dead before ours exists
            ray.kill(old, no_restart=True)
            if not await wait_dead(self.name, self.spec.stop_timeout_ms):
                raise StartFailed(f"an old copy of {self.name!r} is still alive after ray.kill")
        p = self.params
        opts: dict[str, Any] = dict(
            name=self.name, namespace=NAMESPACE, num_cpus=p.num_cpus, max_restarts=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False))
        if p.resources:
            opts["resources"] = dict(p.resources)
        if p.detached:
            opts["lifetime"] = "detached"
        try:
            self.handle = actor_cls.options(**opts).remote(*p.args, **p.kwargs)
        except ValueError as exc:  # the name is taken again (a race with another start)
            raise StartFailed(f"cannot create {self.name!r}: {str(exc).splitlines()[0]}") from None

    async def probe(self, timeout_ms: int) -> str | None:
        if self.handle is None or self.ended.done():
            return "the actor is not running"
        method = self.params.health_method or READY_METHOD
        try:
            await asyncio.wait_for(getattr(self.handle, method).remote(), timeout_ms / 1000)
            return None
        except asyncio.TimeoutError:
            return f"{method}() did not answer within {timeout_ms} ms"
        except RayActorError as exc:
            self._end(Ended("exited", None, False))
            return f"the actor died: {str(exc).splitlines()[0][:200]}"
        except GetTimeoutError:
            return f"{method}() did not answer within {timeout_ms} ms"
        except Exception as exc:  # noqa: BLE001 - the user's health method raised: unhealthy
            return f"{method}() raised {type(exc).__name__}"

    async def stop(self) -> bool:
        if self.handle is None:
            self._end(Ended("stopped", None, False))
            return False
        forced = False
        try:
            self.handle.__ray_terminate__.remote()  # graceful: queued calls finish, then it exits
        except Exception:  # noqa: BLE001 - already dead
            pass
        if not await wait_dead(self.name, self.spec.stop_timeout_ms):
            ray.kill(self.handle, no_restart=True)
            forced = True
            await wait_dead(self.name, 10 * self.spec.stop_timeout_ms)
        self._end(Ended("stopped", None, forced))
        return forced
