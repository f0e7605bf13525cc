"""The part every Ray actor shares: run a core's step, then carry out its effects in order.

A core's step runs to completion (no await inside it). Its effects go to one queue per
actor, drained by one task, so a `Persist` (fsync, in a thread) is durable before any
`Send` that follows it leaves — also across steps — while new messages keep being
stepped. Messages are one-way actor calls; a peer that is gone is like a lost message.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any, Awaitable, Callable

import ray

from actors import messages as m
from actors.effects import (Persist, PersistOwnership, Send, SetAsideReplica, SetTimer, StartGroup,
                            StopGroup, StopService)

NAMESPACE = "roster"
EFFECT_QUEUE_MAX_ITEMS = 100_000
HANDLE_TTL_S = 2.0
log = logging.getLogger("roster.shell")


# Protocol time: monotonic, so an NTP step cannot move a lease, a contact or a timer. It is
# anchored to the wall clock once, at process start, so it reads like epoch milliseconds and
# keeps growing across restarts (the Quorum refuses an acquire proof older than the last one).
_WALL_AT_START_MS = int(time.time() * 1000)
_MONOTONIC_AT_START_NS = time.monotonic_ns()


def now_ms() -> int:
    """Every deadline the cores compute (leases, contact, timers) uses this clock."""
    return _WALL_AT_START_MS + (time.monotonic_ns() - _MONOTONIC_AT_START_NS) // 1_000_000


def wall_ms() -> int:
    """The wall clock: only for the envelope's `ts` (the Quorum stamps it)."""
    return int(time.time() * 1000)


class Router:
    """Actor handles by address. A handle is looked up again after HANDLE_TTL_S: a one-way call
    to a dead actor fails silently, and a node restarted on a new Ray node has a new actor
    under the old name."""

    def __init__(self) -> None:
        self._handles: dict[str, tuple[Any, float]] = {}

    def _handle(self, to: str) -> Any:
        cached = self._handles.get(to)
        now = time.monotonic()
        if cached is not None and now - cached[1] < HANDLE_TTL_S:
            return cached[0]
        try:
            handle = ray.get_actor(to, namespace=NAMESPACE)
        except ValueError:
            self._handles.pop(to, None)
            return None  # not (yet or any more) there: the protocol treats it as a lost message
        self._handles[to] = (handle, now)
        return handle

    def send(self, sender: str, to: str, msg: m.Message) -> None:
        handle = self._handle(to)
        if handle is None:
            return
        try:
            handle.deliver.remote(sender, msg)
        except Exception:  # noqa: BLE001 - a dead actor: drop the message, look it up again next time
            self._handles.pop(to, None)


class EffectRunner:
    def __init__(self, address: str, step: Callable[[m.Message, int, str], list],
                 persist: Callable[[Any], None] | None = None,
                 on_group: Callable[[str, bool], Awaitable[None] | None] | None = None,
                 on_stop: Callable[[str], Awaitable[None]] | None = None,
                 local: dict[str, Callable[[m.Message], bool]] | None = None) -> None:
        self.address = address
        self._step = step
        self._persist = persist
        self._on_group = on_group
        self._on_stop = on_stop
        self._local = local or {}
        self.router = Router()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=EFFECT_QUEUE_MAX_ITEMS)
        self._worker: asyncio.Task | None = None

    def deliver(self, sender: str, msg: m.Message) -> None:
        intercept = self._local.get(type(msg).__name__)
        if intercept is not None and intercept(msg):
            return
        self.run(self._step(msg, now_ms(), sender))

    def run(self, effects: list) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._drain())
        for e in effects:
            if isinstance(e, SetTimer):
                self._set_timer(e)  # timers are local and need no ordering against I/O
            else:
                self._queue.put_nowait(e)

    def _set_timer(self, e: SetTimer) -> None:
        old = self._timers.pop(e.key, None)
        if old is not None:
            old.cancel()
        delay_s = max(e.at_ms - now_ms(), 0) / 1000
        loop = asyncio.get_running_loop()
        self._timers[e.key] = loop.call_later(delay_s, self.deliver, self.address, m.TimerFired(key=e.key))

    async def _drain(self) -> None:
        while True:
            e = await self._queue.get()
            try:
                await self._carry_out(e)
            except Exception:  # noqa: BLE001 - keep the actor alive; the failure is logged
                log.exception("%s: effect %s failed", self.address, type(e).__name__)

    async def _carry_out(self, e: Any) -> None:
        if isinstance(e, Send):
            self.router.send(self.address, e.to, e.msg)
        elif isinstance(e, (Persist, PersistOwnership, SetAsideReplica)):
            assert self._persist is not None, f"{self.address} cannot persist"
            await asyncio.to_thread(self._persist, e)
        elif isinstance(e, (StartGroup, StopGroup)):
            if self._on_group is not None:
                # Carried out before the next effect: a StopGroup has finished (bounded by the
                # resource's stop timeout) before a later Send, e.g. a leaving node's
                # ClusterExit, which the leader takes as proof the groups stopped (S21).
                done = self._on_group(e.group, isinstance(e, StartGroup))
                if inspect.isawaitable(done):
                    await done
        elif isinstance(e, StopService):
            if self._on_stop is not None:
                await self._on_stop(e.reason)

    def cancel_timers(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
