"""Resource types the shell can run: type name -> runner factory (one module per type)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from events.resource_spec import ResourceSpec
from roster.resources.base import Runner


def _process(group: str, spec: ResourceSpec, log_dir: Path, node_id: str) -> Runner:
    from roster.resources.process import ProcessRunner

    return ProcessRunner(group, spec, log_dir, node_id=node_id)


def _ray_actor(group: str, spec: ResourceSpec, log_dir: Path, node_id: str) -> Runner:
    from roster.resources.ray_actor import RayActorRunner  # imports ray: only where one runs

    return RayActorRunner(group, spec)


RUNNERS: dict[str, Callable[[str, ResourceSpec, Path, str], Runner]] = {"process": _process, "ray_actor": _ray_actor}


def make_runner(group: str, spec: ResourceSpec, log_dir: Path, node_id: str) -> Runner:
    factory = RUNNERS.get(spec.type)
    if factory is None:
        raise ValueError(f"unknown resource type {spec.type!r} (one of: {', '.join(sorted(RUNNERS))})")
    return factory(group, spec, log_dir, node_id)
