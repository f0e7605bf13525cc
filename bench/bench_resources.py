"""Resource shell benchmarks (issue 10, issue 12 §3), on real processes:

1. crash detection: kill -9 a `process` resource -> the host's ResourceFailed(run);
2. run-deadline enforcement: SIGSTOP the process holding the host -> the service dead,
   measured against the deadline the watchdog held (lateness);
3. /svc/ proxy overhead: requests/s and p99 through a node's HTTP app vs to the service
   directly (the app in its own process, an aiohttp client with fixed concurrency).

    .venv/bin/python bench/bench_resources.py [--trials 20] [--seconds 3]

The core's restart/failover decisions are not here (they are the core's); this measures
what the shell adds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from actors import messages as m  # noqa: E402
from actors.effects import StartResource, StopResource  # noqa: E402
from events.resource_spec import HealthCheck, ResourceSpec  # noqa: E402
from roster.resources.host import ResourceHost  # noqa: E402

LEASE_MS = 300
CONCURRENCY = 16


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def crash_detection(trials: int, data: Path) -> list[float]:
    inbox: asyncio.Queue = asyncio.Queue()
    host = ResourceHost("bench", data, inbox.put_nowait)
    spec = ResourceSpec(name="s", type="process", params={"argv": ["sleep", "600"]},
                        health=HealthCheck(interval_ms=5000, timeout_ms=2000))
    out = []
    for i in range(trials):
        host.execute(StartResource("g", spec, i))
        while not isinstance(await inbox.get(), m.ResourceStarted):
            pass
        pid = host.entries[("g", "s")].runner.pid
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        while not isinstance(await inbox.get(), m.ResourceFailed):
            pass
        out.append((time.monotonic() - t0) * 1000)
        host.execute(StopResource("g", "s"))
        while not isinstance(await inbox.get(), m.ResourceStopped):
            pass
    return out


HOLDER = """
import asyncio, sys, time
from pathlib import Path
from actors.effects import SetRunDeadline, StartResource
from events.resource_spec import ResourceSpec
from actors import messages as m
from roster.resources.host import ResourceHost, mono_ms

async def main():
    started = asyncio.Event()
    host = ResourceHost("n1", Path(sys.argv[1]), lambda msg: started.set() if isinstance(msg, m.ResourceStarted) else None)
    lease = int(sys.argv[2])
    host.execute(SetRunDeadline(int(time.time() * 1000) + lease))
    host.execute(StartResource("g", ResourceSpec(name="svc", type="process", params={"argv": ["sleep", "600"]}), 0))
    await started.wait()
    print(host.entries[("g", "svc")].runner.pid, flush=True)
    while True:
        host.execute(SetRunDeadline(int(time.time() * 1000) + lease))
        print(host.deadline_mono_ms, flush=True)
        await asyncio.sleep(0.05)

asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def deadline_lateness(trials: int, data: Path) -> list[float]:
    out = []
    for _ in range(trials):
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data), str(LEASE_MS)], cwd=REPO,
                                  stdout=subprocess.PIPE, text=True)
        pid = int(holder.stdout.readline())  # type: ignore[union-attr]
        last_deadline = int(holder.stdout.readline())  # type: ignore[union-attr]
        holder.send_signal(signal.SIGSTOP)
        # drain what it printed before the stop: the last deadline it gave its watchdog
        os.set_blocking(holder.stdout.fileno(), False)  # type: ignore[union-attr]
        for line in holder.stdout:  # type: ignore[union-attr]
            if line.strip().isdigit():
                last_deadline = int(line)
        while _alive(pid):
            time.sleep(0.001)
        dead_at = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1_000_000
        out.append(dead_at - last_deadline)
        holder.send_signal(signal.SIGCONT)
        holder.kill()
        holder.wait()
    return out


APP = """
import asyncio, sys
from events.resource_spec import ResourceSpec
from events import codec, types as ev
from events.record import draft
from roster.http.app import create_app, serve
from roster.http.feed import NodeHealth, ReplicaFeed

port, svc_port = int(sys.argv[1]), int(sys.argv[2])
spec = ResourceSpec(name="app", type="process", params={"argv": ["x"], "port": svc_port})
events = [ev.GroupCreated(group="web"), ev.ResourceAdded(group="web", spec=spec),
          ev.GroupMoved(group="web", from_node=None, to_node="n1", reason="placed"),
          ev.ResourceOnline(group="web", resource="app", node="n1", attempt=0, endpoint=f"127.0.0.1:{svc_port}")]
records = codec.seal_all([draft(e, by="n1") for e in events], first_seq=1, epoch=1,
                         ts="2024-01-01T00:00:00.000Z", prev_hash=codec.GENESIS_HASH)
feed = ReplicaFeed.from_records("n1", records)

async def admin(op, args):
    raise RuntimeError("no admin here")

async def main():
    app = create_app(feed, admin=admin, health=lambda: NodeHealth("n1", "leader", "n1", 1, feed.seq, feed.seq), token="")
    await serve(app, "127.0.0.1", port)
    print("up", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def load(url: str, seconds: float) -> tuple[float, float]:
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        async def worker() -> None:
            while time.monotonic() < stop_at:
                t0 = time.monotonic()
                async with session.get(url) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                latencies.append((time.monotonic() - t0) * 1000)
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return len(latencies) / seconds, pct(latencies, 0.99)


async def wait_http(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)


async def proxy_overhead(seconds: float) -> dict[str, tuple[float, float]]:
    svc_port, app_port = free_port(), free_port()
    svc = subprocess.Popen([sys.executable, str(REPO / "examples" / "whoami.py"), str(svc_port)],
                           stdout=subprocess.DEVNULL)
    app = subprocess.Popen([sys.executable, "-c", APP, str(app_port), str(svc_port)], cwd=REPO, stdout=subprocess.PIPE)
    try:
        app.stdout.readline()  # type: ignore[union-attr]
        direct, proxied = f"http://127.0.0.1:{svc_port}/x", f"http://127.0.0.1:{app_port}/svc/web/x"
        await wait_http(direct)
        await wait_http(proxied)
        return {"direct": await load(direct, seconds), "via /svc/": await load(proxied, seconds)}
    finally:
        for p in (svc, app):
            p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores, shared)")
    with TemporaryDirectory() as tmp:
        crash = asyncio.run(crash_detection(args.trials, Path(tmp) / "crash"))
        late = deadline_lateness(args.trials, Path(tmp) / "deadline")
    print(f"kill -9 -> ResourceFailed(run), ms, {len(crash)} trials: p50 {pct(crash, .5):.1f}  p99 {pct(crash, .99):.1f}  "
          f"max {max(crash):.1f}")
    print(f"SIGSTOPped holder, service death after its deadline ({LEASE_MS} ms lease), ms, {len(late)} trials: "
          f"p50 {pct(late, .5):.1f}  p99 {pct(late, .99):.1f}  max {max(late):.1f}  min {min(late):.1f}")
    res = asyncio.run(proxy_overhead(args.seconds))
    (d_rps, d_p99), (p_rps, p_p99) = res["direct"], res["via /svc/"]
    print(f"direct: {d_rps:.0f} req/s p99 {d_p99:.1f} ms;  via /svc/: {p_rps:.0f} req/s p99 {p_p99:.1f} ms;  "
          f"ratio {p_rps / d_rps:.2f}x req/s, {p_p99 / d_p99:.2f}x p99 (concurrency {CONCURRENCY}, {args.seconds:g} s each)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
