"""The `process` resource on real processes (issue 10 §3, issue 12 §3; invariant 4: a
resource runs on at most one server at any instant — its process group is gone before a
stop is reported, and its watchdog stops it by the run deadline without the node)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from actors import messages as m
from actors.effects import SetRunDeadline, StartResource, StopResource
from events.resource_spec import HealthCheck, ResourceSpec
from roster.resources.host import ResourceHost
from roster.resources.logfiles import RotatingFile

REPO = Path(__file__).resolve().parents[1]
WHOAMI = str(REPO / "examples" / "whoami.py")
WAIT_S = 15.0  # generous: the machine is shared


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def spec(name: str, argv: list[str], **kw) -> ResourceSpec:
    params = {"argv": argv, **kw.pop("params", {})}
    return ResourceSpec(name=name, type="process", params=params,
                        health=kw.pop("health", HealthCheck(interval_ms=100, timeout_ms=1000)), **kw)


class Inbox:
    def __init__(self) -> None:
        self.msgs: list[m.Message] = []
        self.event = asyncio.Event()

    def post(self, msg: m.Message) -> None:
        self.msgs.append(msg)
        self.event.set()

    async def next(self, kind: type, timeout_s: float = WAIT_S) -> m.Message:
        deadline = time.monotonic() + timeout_s
        while True:
            for msg in self.msgs:
                if isinstance(msg, kind):
                    self.msgs.remove(msg)
                    return msg
            self.event.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind.__name__} within {timeout_s} s; got {self.msgs}")
            try:
                await asyncio.wait_for(self.event.wait(), left)
            except asyncio.TimeoutError:
                pass  # nothing came: the loop looks once more, then the deadline check above raises


@pytest.fixture
async def host(tmp_path):
    inbox = Inbox()
    h = ResourceHost("n1", tmp_path, inbox.post)
    h.inbox = inbox  # type: ignore[attr-defined]
    yield h
    await h.stop_all()


async def test_s3_process_starts_serves_http_and_stops_with_its_group_gone(host):
    port = free_port()
    s = spec("web", [sys.executable, WHOAMI, str(port)], params={"port": port, "probe": "http"})
    host.execute(StartResource("g", s, 0))
    started = await host.inbox.next(m.ResourceStarted)
    assert (started.group, started.resource, started.attempt, started.endpoint) == ("g", "web", 0, f"127.0.0.1:{port}")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/x", timeout=5).read()
    assert b'"node": "n1"' in body
    pid = host.entries[("g", "web")].runner.pid
    host.execute(StopResource("g", "web"))
    stopped = await host.inbox.next(m.ResourceStopped)
    assert stopped.forced is False and not group_alive(pid) and not alive(pid)
    assert (host.log_dir("g", "web") / "stdout.log").read_bytes().count(b"GET /x") == 1


async def test_kill9_is_a_run_failure_with_the_exit_code(host):
    host.execute(StartResource("g", spec("sleeper", ["sleep", "600"]), 0))
    await host.inbox.next(m.ResourceStarted)
    pid = host.entries[("g", "sleeper")].runner.pid
    os.kill(pid, signal.SIGKILL)
    failed = await host.inbox.next(m.ResourceFailed)
    assert (failed.phase, failed.exit_code, failed.attempt) == ("run", -9, 0)
    assert "signal 9" in failed.reason
    assert not any(isinstance(x, m.ResourceStarted) for x in host.inbox.msgs), "the host never restarts on its own"


async def test_a_command_that_does_not_exist_is_a_start_failure(host):
    host.execute(StartResource("g", spec("bad", ["/nonexistent/roster-no-such-command"]), 2))
    failed = await host.inbox.next(m.ResourceFailed)
    assert failed.phase == "start" and failed.attempt == 2 and "cannot start" in failed.reason
    assert ("g", "bad") not in host.entries


async def test_a_service_that_ignores_sigterm_is_sigkilled_after_the_stop_timeout(host):
    trap = [sys.executable, "-c", "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                  "print('up', flush=True); time.sleep(600)"]
    host.execute(StartResource("g", spec("stubborn", trap, stop_timeout_ms=300), 0))
    await host.inbox.next(m.ResourceStarted)
    await asyncio.sleep(0.3)  # let python install its handler
    pid = host.entries[("g", "stubborn")].runner.pid
    t0 = time.monotonic()
    host.execute(StopResource("g", "stubborn"))
    stopped = await host.inbox.next(m.ResourceStopped)
    assert stopped.forced is True and time.monotonic() - t0 >= 0.3 and not group_alive(pid)


async def test_stop_kills_grandchildren_in_the_process_group(host):
    script = "import subprocess,time; p=subprocess.Popen(['sleep','600']); print(p.pid, flush=True); time.sleep(600)"
    host.execute(StartResource("g", spec("parent", [sys.executable, "-c", script]), 0))
    await host.inbox.next(m.ResourceStarted)
    out = host.log_dir("g", "parent") / "stdout.log"
    for _ in range(100):
        if out.exists() and out.read_text().strip():
            break
        await asyncio.sleep(0.05)
    grandchild = int(out.read_text().split()[0])
    assert alive(grandchild)
    host.execute(StopResource("g", "parent"))
    await host.inbox.next(m.ResourceStopped)
    assert not alive(grandchild)


async def test_s8c_run_deadline_stops_the_service_without_a_stop(host):
    host.execute(StartResource("g", spec("sleeper", ["sleep", "600"]), 0))
    await host.inbox.next(m.ResourceStarted)
    pid = host.entries[("g", "sleeper")].runner.pid
    deadline_wall_ms = int(time.time() * 1000) + 400
    host.execute(SetRunDeadline(deadline_wall_ms))
    failed = await host.inbox.next(m.ResourceFailed)
    assert failed.phase == "run" and "deadline" in failed.reason and not group_alive(pid)
    assert time.time() * 1000 >= deadline_wall_ms - 50  # not early (50 ms: clock conversion)


async def test_renewed_deadline_keeps_it_running(host):
    host.execute(SetRunDeadline(int(time.time() * 1000) + 500))
    host.execute(StartResource("g", spec("sleeper", ["sleep", "600"]), 0))
    await host.inbox.next(m.ResourceStarted)
    for _ in range(6):
        host.execute(SetRunDeadline(int(time.time() * 1000) + 500))
        await asyncio.sleep(0.2)
    assert not any(isinstance(x, m.ResourceFailed) for x in host.inbox.msgs)
    assert alive(host.entries[("g", "sleeper")].runner.pid)


async def test_probe_failure_is_reported_as_probe_phase(host):
    port = free_port()
    s = spec("web", [sys.executable, WHOAMI, str(port)], params={"port": port, "probe": "tcp"})
    host.execute(StartResource("g", s, 0))
    await host.inbox.next(m.ResourceStarted)
    pid = host.entries[("g", "web")].runner.pid
    os.kill(pid, signal.SIGSTOP)  # a hung service: alive, but accepts nothing
    try:
        # the kernel still completes TCP handshakes from the backlog: fill it with HTTP probes
        host.entries[("g", "web")].runner.params = host.entries[("g", "web")].runner.params.model_copy(
            update={"probe": "http"})
        failed = await host.inbox.next(m.ResourceFailed)
        assert failed.phase == "probe" and "timed out" in failed.reason and failed.exit_code is None
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_start_timeout_when_the_port_never_opens(host):
    port = free_port()
    s = spec("deaf", ["sleep", "600"], params={"port": port, "probe": "tcp"}, start_timeout_ms=500)
    host.execute(StartResource("g", s, 0))
    failed = await host.inbox.next(m.ResourceFailed)
    assert failed.phase == "start" and "start timeout" in failed.reason
    assert ("g", "deaf") not in host.entries


def test_log_files_are_capped_and_rotated(tmp_path):
    f = RotatingFile(tmp_path / "stdout.log", max_bytes=100, files_kept=2)
    for i in range(50):
        f.write(f"line {i:04d}\n".encode() * 3)
    f.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["stdout.log", "stdout.log.1", "stdout.log.2"]
    assert all((tmp_path / n).stat().st_size <= 100 for n in names)
    assert (tmp_path / "stdout.log").read_bytes().endswith(b"line 0049\n")


HOLDER = """
import asyncio, sys, time
from pathlib import Path
from actors.effects import SetRunDeadline, StartResource
from events.resource_spec import ResourceSpec
from actors import messages as m
from roster.resources.host import ResourceHost

async def main():
    started = asyncio.Event()
    def post(msg):
        if isinstance(msg, m.ResourceStarted):
            started.set()
    host = ResourceHost("n1", Path(sys.argv[1]), post)
    host.execute(SetRunDeadline(int(time.time() * 1000) + int(sys.argv[2])))
    host.execute(StartResource("g", ResourceSpec(name="svc", type="process", params={"argv": ["sleep", "600"]}), 0))
    await started.wait()
    print(host.entries[("g", "svc")].runner.pid, flush=True)
    while True:  # renew as a healthy node would, for as long as this loop runs
        host.execute(SetRunDeadline(int(time.time() * 1000) + int(sys.argv[2])))
        await asyncio.sleep(0.1)

asyncio.run(main())
"""


def _start_holder(tmp_path: Path, lease_ms: int) -> tuple[subprocess.Popen, int]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), str(lease_ms)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    line = holder.stdout.readline()  # type: ignore[union-attr]
    assert line.strip().isdigit(), f"holder said {line!r}"
    return holder, int(line)


def _stop_holder(holder: subprocess.Popen) -> None:
    try:
        holder.send_signal(signal.SIGCONT)
    except ProcessLookupError:
        pass  # cleanup: the holder already exited, which is what kill() below makes sure of
    holder.kill()
    holder.wait(timeout=WAIT_S)


def test_issue12_sigstopped_holder_service_is_dead_by_its_deadline(tmp_path):
    lease_ms = 600
    holder, pid = _start_holder(tmp_path, lease_ms)
    try:
        time.sleep(0.5)
        assert alive(pid), "renewed: the service keeps running while its holder runs"
        holder.send_signal(signal.SIGSTOP)  # a GC pause / SIGSTOP: no event loop, no renewals
        stopped_at = time.monotonic()
        while alive(pid) and time.monotonic() - stopped_at < WAIT_S:
            time.sleep(0.01)
        dead_after_s = time.monotonic() - stopped_at
        assert not alive(pid), "the service outlived its deadline"
        # the last renewal was at most ~0.1 s before the stop: dead within the lease, plus scheduling slack
        assert dead_after_s <= lease_ms / 1000 + 0.5, dead_after_s
    finally:
        _stop_holder(holder)


def test_issue12_service_dies_with_its_holder(tmp_path):
    holder, pid = _start_holder(tmp_path, 60_000)
    try:
        holder.kill()  # the node actor's process dies: its pipe to the watchdog closes
        holder.wait(timeout=WAIT_S)
        t0 = time.monotonic()
        while alive(pid) and time.monotonic() - t0 < WAIT_S:
            time.sleep(0.01)
        assert not alive(pid), "the service outlived the process that held it"
    finally:
        _stop_holder(holder)


# --- secrets from files (env_files): the value reaches the service, never the log ----------------

SECRET = "s3cr3t-value-for-the-test"
PRINT_ENV = "import os, sys, time; open(sys.argv[1], 'w').write(os.environ['API_TOKEN']); time.sleep(60)"


def test_env_files_are_paths_in_the_spec_and_only_absolute_ones():
    from actors.resource_types import resource_from_dict

    ok = resource_from_dict({"name": "app", "type": "process",
                             "params": {"argv": ["x"], "env_files": {"API_TOKEN": "/etc/roster/token"}}})
    assert not isinstance(ok, str) and ok.params["env_files"] == {"API_TOKEN": "/etc/roster/token"}
    plain = resource_from_dict({"name": "app", "type": "process", "params": {"argv": ["x"]}})
    assert not isinstance(plain, str) and "env_files" not in plain.params  # old specs keep their bytes
    relative = resource_from_dict({"name": "app", "type": "process",
                                   "params": {"argv": ["x"], "env_files": {"T": "token.txt"}}})
    assert isinstance(relative, str) and "not an absolute path" in relative
    both = resource_from_dict({"name": "app", "type": "process",
                               "params": {"argv": ["x"], "env": {"T": "a"}, "env_files": {"T": "/t"}}})
    assert isinstance(both, str) and "both in env and in env_files" in both


async def test_env_files_value_reaches_the_service_and_not_the_spec_or_the_command_line(host, tmp_path):
    secret_file, seen = tmp_path / "token", tmp_path / "seen"
    secret_file.write_text(SECRET + "\n")
    s = spec("app", [sys.executable, "-c", PRINT_ENV, str(seen)], params={"env_files": {"API_TOKEN": str(secret_file)}})
    host.execute(StartResource("g", s, 1))
    await host.inbox.next(m.ResourceStarted)
    deadline = time.monotonic() + WAIT_S
    while not (seen.exists() and seen.read_text()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert seen.read_text() == SECRET  # one trailing newline dropped, as `$(cat file)` would
    assert SECRET not in repr(s) and SECRET not in repr(host.status())
    watchdog_pid = host.entries[("g", "app")].runner.watchdog.pid
    assert SECRET.encode() not in Path(f"/proc/{watchdog_pid}/cmdline").read_bytes()
    host.execute(StopResource("g", "app"))
    await host.inbox.next(m.ResourceStopped)


async def test_an_unreadable_env_file_is_a_start_failure_that_names_the_file(host, tmp_path):
    missing = tmp_path / "no-such-token"
    s = spec("app", [sys.executable, "-c", PRINT_ENV, str(tmp_path / "seen")],
             params={"env_files": {"API_TOKEN": str(missing)}})
    host.execute(StartResource("g", s, 1))
    failed = await host.inbox.next(m.ResourceFailed)
    assert failed.phase == "start" and "cannot read env file for API_TOKEN" in failed.reason
    assert str(missing) in failed.reason and not (tmp_path / "seen").exists()
