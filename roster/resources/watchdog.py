"""The watchdog beside one service: `python -m roster.resources.watchdog CONFIG_JSON`.

The node's ResourceHost starts one watchdog per `process` resource, in its own session (a
SIGSTOP of the node's process group does not reach it). The watchdog starts the service
in the service's own process group and then, without needing the node's event loop:

- kills the service's whole process group (SIGKILL) when the run deadline passes without
  renewal. The deadline is CLOCK_MONOTONIC milliseconds, which on Linux is one clock for
  every process on the host, so the host and the watchdog agree on it without messages;
- kills it when its parent goes away (stdin reaches EOF: the node actor's process died);
- stops it on request: SIGTERM to the group, SIGKILL after the stop timeout;
- copies the service's stdout/stderr into size-capped, rotated files;
- reports, one JSON line each on stdout: `started` (pid), then exactly one of `exited`
  (on its own), `stopped` (on request), `deadline` or `orphaned`, each sent only once no
  process of the group is left (the watchdog is the group's subreaper, so it sees
  grandchildren die too) — or `error` if the command could not start.

Commands on stdin, one a line: `deadline <monotonic ms>` (0: none), `stop`.
"""

from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from roster.resources.logfiles import RotatingFile

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h: orphaned descendants are re-parented to us
PR_SET_PDEATHSIG = 1  # linux/prctl.h: a signal the child gets when its parent dies
GROUP_GONE_POLL_S = 0.01
STDIN_READ_BYTES = 4096
PIPE_READ_BYTES = 65536
NO_DEADLINE = 0


def mono_ms() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1_000_000


def _become_subreaper() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: grandchildren are reaped by init instead
        pass


def _die_with_parent() -> None:
    """In the service, before exec: if the watchdog itself is killed (SIGKILL leaves it no
    chance to act — Ray kills a dead node's worker processes and their children), the
    service gets SIGKILL too."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _reap(main_pid: int) -> int | None:
    """Reap every exited child (the service and re-parented descendants); the service's
    exit code (negative: killed by that signal) if it was among them."""
    code = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return code
        if pid == 0:
            return code
        if pid == main_pid:
            code = os.waitstatus_to_exitcode(status)


class Watchdog:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.deadline_ms: int = int(cfg.get("deadline_mono_ms") or NO_DEADLINE)
        self.stop_timeout_ms: int = int(cfg["stop_timeout_ms"])
        log_dir = Path(cfg["log_dir"])
        log_dir.mkdir(parents=True, exist_ok=True)
        cap, keep = int(cfg["log_max_bytes"]), int(cfg["log_files_kept"])
        self.logs = {"stdout": RotatingFile(log_dir / "stdout.log", cap, keep),
                     "stderr": RotatingFile(log_dir / "stderr.log", cap, keep)}
        self.sel = selectors.DefaultSelector()
        self.proc: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self._stdin_buf = b""

    def report(self, event: str, **fields: Any) -> None:
        try:
            sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):  # the host is gone: the group is dealt with anyway
            pass

    def spawn(self) -> bool:
        env = {**os.environ, **self.cfg.get("env", {})}
        for name, path in self.cfg.get("env_files", {}).items():
            try:  # read here, at each start, so the value never crosses Ray or reaches a log
                env[name] = Path(path).read_text().removesuffix("\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
                self.report("error", reason=f"cannot read env file for {name} ({path}): {reason}")
                return False
        try:
            self.proc = subprocess.Popen(self.cfg["argv"], env=env, cwd=self.cfg.get("cwd"), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        except OSError as exc:
            self.report("error", reason=f"cannot start {self.cfg['argv'][0]!r}: {exc.strerror or exc}")
            return False
        for name in ("stdout", "stderr"):
            pipe = getattr(self.proc, name)
            os.set_blocking(pipe.fileno(), False)
            self.sel.register(pipe, selectors.EVENT_READ, name)
        os.set_blocking(sys.stdin.fileno(), False)
        self.sel.register(sys.stdin.buffer, selectors.EVENT_READ, "control")
        self.report("started", pid=self.proc.pid)
        return True

    def run(self) -> str:
        """Serve until the service is gone; the reason it went."""
        assert self.proc is not None
        while True:
            now = mono_ms()
            if self.deadline_ms != NO_DEADLINE and now >= self.deadline_ms:
                self.kill_group(signal.SIGKILL)
                return "deadline"
            timeout_ms = 200 if self.deadline_ms == NO_DEADLINE else min(200, self.deadline_ms - now)
            for key, _ in self.sel.select(max(timeout_ms, 0) / 1000):
                verdict = self._on_ready(key)
                if verdict:
                    return verdict
            code = _reap(self.proc.pid)
            if code is not None:
                self.exit_code = code
                self.kill_group(signal.SIGKILL)  # what the service left behind goes with it
                return "exited"

    def _on_ready(self, key: selectors.SelectorKey) -> str | None:
        if key.data != "control":
            self._pump(key)
            return None
        try:
            chunk = os.read(sys.stdin.fileno(), STDIN_READ_BYTES)
        except BlockingIOError:
            return None
        if not chunk:  # the node actor's process is gone: so is its service
            self.kill_group(signal.SIGKILL)
            return "orphaned"
        self._stdin_buf += chunk
        while b"\n" in self._stdin_buf:
            line, self._stdin_buf = self._stdin_buf.split(b"\n", 1)
            verdict = self._command(line.decode(errors="replace").split())
            if verdict:
                return verdict
        return None

    def _command(self, words: list[str]) -> str | None:
        if words[:1] == ["deadline"] and len(words) == 2 and words[1].isdigit():
            self.deadline_ms = int(words[1])
        elif words == ["stop"]:
            return "stopped"
        return None

    def _pump(self, key: selectors.SelectorKey) -> None:
        try:
            data = os.read(key.fileobj.fileno(), PIPE_READ_BYTES)  # type: ignore[union-attr]
        except BlockingIOError:
            return
        if data:
            self.logs[key.data].write(data)
        else:
            self.sel.unregister(key.fileobj)

    def kill_group(self, sig: int) -> None:
        assert self.proc is not None
        _killpg(self.proc.pid, sig)

    def wait_gone(self, until_ms: int | None) -> bool:
        """Reap until no process of the group is left; False if `until_ms` passed first."""
        assert self.proc is not None
        while True:
            code = _reap(self.proc.pid)
            if code is not None and self.exit_code is None:
                self.exit_code = code
            if not _group_alive(self.proc.pid):
                return True
            if until_ms is not None and mono_ms() >= until_ms:
                return False
            time.sleep(GROUP_GONE_POLL_S)

    def stop(self) -> bool:
        """SIGTERM the group; SIGKILL it after the stop timeout. True if SIGKILL was needed."""
        self.kill_group(signal.SIGTERM)
        if self.wait_gone(mono_ms() + self.stop_timeout_ms):
            return False
        self.kill_group(signal.SIGKILL)
        self.wait_gone(None)
        return True

    def drain_logs(self) -> None:
        for key in list(self.sel.get_map().values()):
            if key.data != "control":
                while True:
                    try:
                        data = os.read(key.fileobj.fileno(), PIPE_READ_BYTES)  # type: ignore[union-attr]
                    except (BlockingIOError, OSError):
                        break
                    if not data:
                        break
                    self.logs[key.data].write(data)
        for f in self.logs.values():
            f.close()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the host's to handle
    _become_subreaper()
    dog = Watchdog(json.loads(argv[1]))
    if not dog.spawn():
        return 1
    why = dog.run()
    if why == "stopped":
        forced = dog.stop()
    else:  # exited on its own, or SIGKILLed (deadline, orphaned): reap what is left
        dog.wait_gone(None)
        forced = why != "exited"
    dog.drain_logs()
    dog.report(why, code=dog.exit_code, forced=forced)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
