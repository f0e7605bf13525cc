"""What every resource type's runner offers the host: start, probe, stop, and an `ended`
future that resolves once the resource is provably gone (and why)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from events.resource_spec import ResourceSpec


class StartFailed(Exception):
    """The resource could not be started (bad command, import error, name still taken…)."""

    def __init__(self, reason: str, exit_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.exit_code = reason, exit_code


@dataclass(frozen=True, slots=True)
class Ended:
    why: str  # "exited" (on its own), "stopped" (asked), "deadline", "orphaned", "lost"
    code: int | None  # the process's exit code (negative: the signal), None if not a process
    forced: bool  # SIGKILL / ray.kill was needed


class Runner:
    """One resource on this node. Subclasses fill in start/stop/probe."""

    def __init__(self, group: str, spec: ResourceSpec) -> None:
        self.group, self.spec = group, spec
        self.ended: asyncio.Future[Ended] = asyncio.get_running_loop().create_future()

    @property
    def endpoint(self) -> str | None:
        return None

    def _end(self, end: Ended) -> None:
        if not self.ended.done():
            self.ended.set_result(end)

    async def start(self, deadline_mono_ms: int | None) -> None:
        raise NotImplementedError

    def renew(self, deadline_mono_ms: int) -> None:
        """A later run deadline (CLOCK_MONOTONIC ms); types without a watchdog ignore it."""

    async def probe(self, timeout_ms: int) -> str | None:
        """None if healthy, else why not."""
        raise NotImplementedError

    async def stop(self) -> bool:
        """Stop it and return once it is provably gone; True if it had to be forced."""
        raise NotImplementedError
