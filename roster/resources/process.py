"""The `process` resource type, host side: a service under its watchdog.

The host talks to the watchdog (`roster.resources.watchdog`) over its stdin/stdout pipes;
the watchdog owns the service's process group, its deadline and its log files, so the
service is stopped in time even when this process's event loop is not running.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from events.resource_spec import ResourceSpec
from actors.resource_types import ProcessParams, params_of
from roster.resources.base import Ended, Runner, StartFailed
from roster.resources.logfiles import DEFAULT_LOG_FILES_KEPT, DEFAULT_LOG_MAX_BYTES

WATCHDOG_MODULE = "roster.resources.watchdog"
WATCHDOG_HELLO_TIMEOUT_MS = 10_000  # python start-up of the watchdog, on a loaded machine
STOP_REPORT_GRACE_MS = 5_000  # beyond the stop timeout, for the watchdog to reap and report
HTTP_HEALTHY_STATUS_MAX = 399
HTTP_PROBE_READ_BYTES = 1024


def mono_ms() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1_000_000


class ProcessRunner(Runner):
    def __init__(self, group: str, spec: ResourceSpec, log_dir: Path, *, node_id: str = "",
                 log_max_bytes: int = DEFAULT_LOG_MAX_BYTES, log_files_kept: int = DEFAULT_LOG_FILES_KEPT) -> None:
        super().__init__(group, spec)
        self.params: ProcessParams = params_of(spec)  # type: ignore[assignment]
        self.log_dir, self.node_id = log_dir, node_id
        self.log_max_bytes, self.log_files_kept = log_max_bytes, log_files_kept
        self.watchdog: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self._reader: asyncio.Task | None = None

    @property
    def endpoint(self) -> str | None:
        return f"{self.params.host}:{self.params.port}" if self.params.port else None

    def _config(self, deadline_mono_ms: int | None) -> dict[str, Any]:
        p = self.params
        # The service may say where it runs (examples/whoami.py does); its own env wins.
        env = {"ROSTER_NODE": self.node_id, "ROSTER_GROUP": self.group, "ROSTER_RESOURCE": self.spec.name, **p.env}
        return {"argv": list(p.argv), "env": env, "env_files": dict(p.env_files), "cwd": p.cwd,
                "stop_timeout_ms": self.spec.stop_timeout_ms,
                "deadline_mono_ms": deadline_mono_ms or 0, "log_dir": str(self.log_dir),
                "log_max_bytes": self.log_max_bytes, "log_files_kept": self.log_files_kept}

    async def start(self, deadline_mono_ms: int | None) -> None:
        cfg = json.dumps(self._config(deadline_mono_ms))
        # Its own session: a SIGSTOP (or Ctrl-C) of the node's process group does not reach it.
        self.watchdog = await asyncio.create_subprocess_exec(
            sys.executable, "-m", WATCHDOG_MODULE, cfg, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, start_new_session=True)
        try:
            hello = await asyncio.wait_for(self._read_event(), WATCHDOG_HELLO_TIMEOUT_MS / 1000)
        except asyncio.TimeoutError:
            self._kill_watchdog()
            await self.watchdog.wait()
            self._end(Ended("lost", None, True))
            raise StartFailed("the watchdog did not start in time") from None
        if hello is None or hello.get("event") != "started":
            await self.watchdog.wait()
            self._end(Ended("error", None, False))  # nothing was started: nothing to stop
            raise StartFailed((hello or {}).get("reason", "the watchdog exited before the service started"))
        self.pid = int(hello["pid"])
        self._reader = asyncio.get_running_loop().create_task(self._read_end())

    async def _read_event(self) -> dict[str, Any] | None:
        assert self.watchdog is not None and self.watchdog.stdout is not None
        line = await self.watchdog.stdout.readline()
        if not line:
            return None
        try:
            return json.loads(line)
        except ValueError:
            return None

    async def _read_end(self) -> None:
        """The watchdog's last word: the service is gone, and why."""
        event = await self._read_event()
        if self.watchdog is not None:
            await self.watchdog.wait()
        if event is None:  # the watchdog died without a report: make sure the group goes with it
            self._kill_group()
            event = {"event": "lost", "code": None, "forced": True}
        self._end(Ended(event.get("event", "lost"), event.get("code"), bool(event.get("forced"))))

    def renew(self, deadline_mono_ms: int) -> None:
        self._send(f"deadline {deadline_mono_ms}\n")

    def _send(self, line: str) -> None:
        w = self.watchdog
        if w is None or w.stdin is None or w.stdin.is_closing():
            return
        try:
            w.stdin.write(line.encode())
        except (ConnectionResetError, BrokenPipeError):
            pass

    async def stop(self) -> bool:
        if self.watchdog is None:
            return False  # never started: nothing to stop
        if not self.ended.done():
            self._send("stop\n")
        try:
            end = await asyncio.wait_for(asyncio.shield(self.ended),
                                         (self.spec.stop_timeout_ms + STOP_REPORT_GRACE_MS) / 1000)
        except asyncio.TimeoutError:  # a wedged watchdog: do its job from here
            self._kill_group()
            self._kill_watchdog()
            if self._reader is None:
                self._end(Ended("lost", None, True))
            end = await self.ended
        return end.forced

    def _kill_group(self) -> None:
        if self.pid is not None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _kill_watchdog(self) -> None:
        if self.watchdog is not None and self.watchdog.returncode is None:
            try:
                self.watchdog.kill()
            except ProcessLookupError:
                pass

    async def probe(self, timeout_ms: int) -> str | None:
        if self.ended.done():
            return "the process is not running"
        if self.params.probe == "none":
            return None
        try:
            return await asyncio.wait_for(self._probe_once(), timeout_ms / 1000)
        except asyncio.TimeoutError:
            return f"{self.params.probe} probe timed out after {timeout_ms} ms"
        except OSError as exc:
            return f"{self.params.probe} probe to {self.endpoint}: {exc.strerror or exc}"

    async def _probe_once(self) -> str | None:
        reader, writer = await asyncio.open_connection(self.params.host, self.params.port)
        try:
            if self.params.probe == "tcp":
                return None
            request = f"GET {self.params.http_path} HTTP/1.0\r\nHost: {self.endpoint}\r\n\r\n"
            writer.write(request.encode())
            await writer.drain()
            status_line = await reader.readline()
            parts = status_line.split()
            if len(parts) < 2 or not parts[1].isdigit():
                return f"http probe: no HTTP status line from {self.endpoint}"
            status = int(parts[1])
            return None if status <= HTTP_HEALTHY_STATUS_MAX else f"http probe: GET {self.params.http_path} -> {status}"
        finally:
            writer.close()
