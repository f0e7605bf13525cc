"""ResourceHost: carries out StartResource / StopResource / SetRunDeadline on one node.

It runs each resource through its type's runner (`registry.make_runner`), health-checks it
every `spec.health.interval_ms`, and posts what happened back to the node's core as
messages: `ResourceStarted` (running and its first health check passed),
`ResourceFailed` (phase start / run / probe), `ResourceStopped` (provably gone). It never
restarts anything on its own: the core decides.

Operations on one resource are carried out in the order they came (a chain of tasks per
resource); a start of a resource that still runs here stops the old copy first, so one
node never holds two. A stop cancels a start still waiting for its first health check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from actors import messages as m
from actors.effects import SetRunDeadline, StartResource, StopResource
from events.resource_spec import ResourceSpec
from roster.resources.base import Ended, Runner, StartFailed
from roster.resources.registry import make_runner

log = logging.getLogger("roster.resources")
WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]")  # listening on every interface
START_POLL_MS = 100  # how often a starting resource is probed until its first check passes
Key = tuple[str, str]


def mono_ms() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1_000_000


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Entry:
    runner: Runner
    attempt: int
    life: asyncio.Task | None = None  # start-up health wait, then the monitor
    failed: bool = False  # a failure was reported: the core decides what comes next


class ResourceHost:
    def __init__(self, node_id: str, data_dir: Path, post: Callable[[m.Message], None], *,
                 make: Callable[[str, ResourceSpec, Path, str], Runner] = make_runner,
                 core_now_ms: Callable[[], int] = wall_ms, advertise_host: str | None = None) -> None:
        self.node_id, self.data_dir, self._post, self._make = node_id, data_dir, post, make
        # A service listening on every interface ("0.0.0.0") is reached by the others at this
        # node's address (its Ray node IP); one on 127.0.0.1 only from this machine.
        self._advertise_host = advertise_host
        self._core_now_ms = core_now_ms  # the clock the core's deadlines are on (the shell's now_ms)
        self.entries: dict[Key, _Entry] = {}
        self._chains: dict[Key, asyncio.Task] = {}
        self.deadline_mono_ms: int | None = None  # None: no run deadline was set yet

    # --- effects -----------------------------------------------------------------------------
    def execute(self, effect: StartResource | StopResource | SetRunDeadline) -> None:
        if isinstance(effect, SetRunDeadline):
            self.set_deadline(effect.at_ms)
        elif isinstance(effect, StartResource):
            self._chain((effect.group, effect.spec.name), lambda: self._start(effect.group, effect.spec, effect.attempt))
        elif isinstance(effect, StopResource):
            self._chain((effect.group, effect.resource), lambda: self._stop(effect.group, effect.resource))

    def set_deadline(self, at_ms: int) -> None:
        """`at_ms` is on the core's clock; each watchdog gets it as CLOCK_MONOTONIC."""
        self.deadline_mono_ms = max(mono_ms() + (at_ms - self._core_now_ms()), 1)
        for e in self.entries.values():
            e.runner.renew(self.deadline_mono_ms)

    def _chain(self, key: Key, op: Callable[[], Awaitable[None]]) -> None:
        prev = self._chains.get(key)

        async def run() -> None:
            if prev is not None:
                await asyncio.wait({prev})
            try:
                await op()
            except Exception:  # noqa: BLE001 - one resource's trouble must not stop the host
                log.exception("%s: resource %s/%s: operation failed", self.node_id, *key)

        task = asyncio.get_running_loop().create_task(run())
        self._chains[key] = task
        task.add_done_callback(lambda t: self._chains.pop(key, None) if self._chains.get(key) is t else None)

    async def idle(self) -> None:
        """Wait until every operation asked for so far is carried out (tests, shutdown)."""
        while self._chains:
            await asyncio.wait(set(self._chains.values()))

    # --- start -------------------------------------------------------------------------------
    async def _start(self, group: str, spec: ResourceSpec, attempt: int) -> None:
        key = (group, spec.name)
        if key in self.entries:
            await self._stop_entry(key)  # never two copies on one node
        try:
            runner = self._make(group, spec, self.log_dir(group, spec.name), self.node_id)
        except Exception as exc:  # noqa: BLE001 - a spec this host cannot run: a start failure
            self._fail(group, spec.name, attempt, "start", f"cannot run: {exc}")
            return
        entry = _Entry(runner, attempt)
        self.entries[key] = entry
        try:
            await runner.start(self.deadline_mono_ms)
        except StartFailed as exc:
            self.entries.pop(key, None)
            await runner.stop()
            self._fail(group, spec.name, attempt, "start", exc.reason, exc.exit_code)
            return
        entry.life = asyncio.get_running_loop().create_task(self._life(group, spec, entry))

    async def _life(self, group: str, spec: ResourceSpec, entry: _Entry) -> None:
        runner = entry.runner
        problem = await self._first_check(spec, runner)
        if problem is not None:  # a start that failed leaves nothing running behind
            if self.entries.get((group, spec.name)) is entry:
                del self.entries[(group, spec.name)]
            await runner.stop()
            end = runner.ended.result() if runner.ended.done() else None
            self._fail(group, spec.name, entry.attempt, "start", problem, end.code if end else None)
            return
        self._post(m.ResourceStarted(group=group, resource=spec.name, attempt=entry.attempt,
                                     endpoint=self._advertised(runner.endpoint)))
        await self._monitor(group, spec, entry)

    async def _first_check(self, spec: ResourceSpec, runner: Runner) -> str | None:
        until = mono_ms() + spec.start_timeout_ms
        last = "no health check passed"
        while True:
            if runner.ended.done():
                return _ended_reason(runner.ended.result())
            problem = await runner.probe(spec.health.timeout_ms)
            if problem is None:
                return None
            last = problem
            if mono_ms() >= until:
                return f"not healthy within the start timeout of {spec.start_timeout_ms} ms: {last}"
            await _sleep_or_end(runner, min(START_POLL_MS, spec.health.interval_ms))

    async def _monitor(self, group: str, spec: ResourceSpec, entry: _Entry) -> None:
        runner = entry.runner
        while True:
            await _sleep_or_end(runner, spec.health.interval_ms)
            problem = None if runner.ended.done() else await runner.probe(spec.health.timeout_ms)
            if runner.ended.done():  # it is gone (the probe may be what found out)
                end = runner.ended.result()
                entry.failed = True
                self._fail(group, spec.name, entry.attempt, "run", _ended_reason(end), end.code)
                return
            if problem is not None:
                entry.failed = True
                self._fail(group, spec.name, entry.attempt, "probe", problem)
                return

    # --- stop --------------------------------------------------------------------------------
    async def _stop(self, group: str, resource: str) -> None:
        forced = await self._stop_entry((group, resource))
        self._post(m.ResourceStopped(group=group, resource=resource, forced=forced))

    async def _stop_entry(self, key: Key) -> bool:
        entry = self.entries.pop(key, None)
        if entry is None:
            return False  # not running here: provably stopped
        if entry.life is not None and not entry.life.done():
            entry.life.cancel()
            await asyncio.wait({entry.life})
        return await entry.runner.stop()

    async def stop_all(self) -> None:
        """Stop every resource here (the node's service is stopping), without reports."""
        await self.idle()
        await asyncio.gather(*(self._stop_entry(k) for k in list(self.entries)), return_exceptions=True)

    # --- helpers -----------------------------------------------------------------------------
    def log_dir(self, group: str, resource: str) -> Path:
        return self.data_dir / "resources" / group / resource

    def _fail(self, group: str, resource: str, attempt: int, phase: str, reason: str,
              exit_code: int | None = None) -> None:
        log.warning("%s: resource %s/%s failed (%s): %s", self.node_id, group, resource, phase, reason)
        self._post(m.ResourceFailed(group=group, resource=resource, attempt=attempt, phase=phase,  # type: ignore[arg-type]
                                    reason=reason[:300], exit_code=exit_code))

    def _advertised(self, endpoint: str | None) -> str | None:
        if endpoint is None or self._advertise_host is None:
            return endpoint
        host, _, port = endpoint.rpartition(":")
        return f"{self._advertise_host}:{port}" if host in WILDCARD_HOSTS else endpoint

    def status(self) -> list[dict]:
        return [{"group": g, "resource": r, "attempt": e.attempt, "failed": e.failed,
                 "endpoint": e.runner.endpoint, "pid": getattr(e.runner, "pid", None)}
                for (g, r), e in sorted(self.entries.items())]


def _ended_reason(end: Ended) -> str:
    if end.why == "deadline":
        return "stopped by its watchdog: the run deadline passed without renewal"
    if end.why == "orphaned":
        return "stopped by its watchdog: the node's process went away"
    if end.code is None:
        return f"it ended ({end.why})"
    if end.code < 0:
        return f"killed by signal {-end.code}"
    return f"exited with code {end.code}"


async def _sleep_or_end(runner: Runner, ms: int) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(runner.ended), ms / 1000)
    except asyncio.TimeoutError:
        pass
