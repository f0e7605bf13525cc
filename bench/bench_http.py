"""HTTP serving cost: GET /v1/membership of a 16-node view, against a bare aiohttp handler that
returns the same bytes; and read-your-write latency (?min_seq) after an admin command.

    .venv/bin/python bench/bench_http.py [--duration 10] [--connections 16] [--rounds 2] [--commands 200]

Needs `wrk` (Debian: `apt-get install -y wrk`). Each server runs in its own process on
127.0.0.1 (port 0), killed when the run ends (and stopping itself after MAX_SERVE_S anyway);
wrk runs `-t1 -c<connections> -d<duration>s --latency` against each, alternating, `--rounds`
times. Targets: the app's requests/s ≥ 0.8 × the bare handler's, its p99 ≤ 2 × the bare p99.

The read-your-write part runs in this process: a simulated 5-node cluster (the real cores)
advanced in real time (1 virtual ms per real ms), the app serving follower n2's replica;
each command is `POST /v1/nodes/n3/pause|resume` then `GET /v1/membership?min_seq=<its seq>`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import ClientSession, web  # noqa: E402

from actors import messages as m  # noqa: E402
from actors.node import CreateSpec  # noqa: E402
from events import codec  # noqa: E402
from roster.history_gen import make_history  # noqa: E402
from roster.http.app import create_app, serve  # noqa: E402
from roster.http.feed import NodeHealth, ReplicaFeed  # noqa: E402
from roster.http.handlers import Ctx  # noqa: E402
from roster.http.query import membership_doc  # noqa: E402
from roster.sim.scenario import sim_settings  # noqa: E402
from roster.sim.world import World  # noqa: E402

N_NODES = 16
HISTORY_EVENTS = 5_000
SEED = 1
TOKEN = "bench-token"
MAX_SERVE_S = 600  # a server process stops itself after this, whatever happens to the parent
SERVER_START_TIMEOUT_S = 30
RPS_RATIO_TARGET = 0.8
P99_RATIO_TARGET = 2.0
PUMP_TICK_MS = 1  # the simulated world advances this many virtual ms per real ms
SIM_NODES = ("n1", "n2", "n3", "n4", "n5")
FOLLOWER = "n2"  # the node whose replica the read-your-write app serves
SIM_SETTLE_MS = 3_000
RYW_TIMEOUT_MS = 5_000


# --- the two servers (child processes) ------------------------------------------------------------------


def _feed() -> ReplicaFeed:
    return ReplicaFeed.from_records("n01", make_history(HISTORY_EVENTS, SEED, N_NODES))


def _static_health(feed: ReplicaFeed):
    def health() -> NodeHealth:
        return NodeHealth(feed.node_id, "follower", None, feed.state.membership.epoch, feed.seq, feed.seq)

    return health


async def _refuse(op: str, args: dict[str, Any]) -> m.AdminReply:
    return m.AdminReply(request_id="-", ok=False, status=503, error="no_leader", detail="benchmark")


def _app() -> web.Application:
    feed = _feed()
    return create_app(feed, admin=_refuse, health=_static_health(feed), token=TOKEN)


def _bare() -> web.Application:
    feed = _feed()
    ctx = Ctx(feed, _refuse, _static_health(feed), TOKEN.encode())
    body = codec.dumps(membership_doc(ctx, feed.state))  # the very bytes the app answers with

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/membership", handler)
    return app


async def _serve_forever(kind: str) -> None:
    runner, port = await serve(_app() if kind == "app" else _bare(), "127.0.0.1", 0)
    print(f"PORT {port}", flush=True)
    try:
        await asyncio.sleep(MAX_SERVE_S)
    finally:
        await runner.cleanup()


def _start(kind: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("PORT "):
            return proc, int(line.split()[1])
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"the {kind} server did not start")


# --- wrk -----------------------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS_MS[unit]


def run_wrk(url: str, duration_s: int, connections: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency", url],
                         capture_output=True, text=True, timeout=duration_s + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+(?:us|ms|s))", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} error answers from {url}")
    return {"rps": rps, "p50": lat["50"], "p99": lat["99"]}


def wrk_comparison(duration_s: int, connections: int, rounds: int) -> dict[str, list[dict[str, float]]]:
    servers = {kind: _start(kind) for kind in ("app", "bare")}
    try:
        urls = {kind: f"http://127.0.0.1:{port}/v1/membership" for kind, (_, port) in servers.items()}
        bodies = {kind: urllib.request.urlopen(url, timeout=10).read() for kind, url in urls.items()}
        assert bodies["app"] == bodies["bare"], "the two servers must answer with the same bytes"
        print(f"body: {len(bodies['app']):,} bytes, {N_NODES} nodes, view at seq {HISTORY_EVENTS}")
        results: dict[str, list[dict[str, float]]] = {"app": [], "bare": []}
        for _ in range(rounds):
            for kind in ("bare", "app"):
                run_wrk(urls[kind], 2, connections)  # warm up
                results[kind].append(run_wrk(urls[kind], duration_s, connections))
        return results
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=10)


# --- read your write ---------------------------------------------------------------------------------------


class RealTimeCluster:
    """The simulated cluster advanced in real time; the app serves FOLLOWER's replica."""

    def __init__(self) -> None:
        self.world = World(seed=SEED, settings=sim_settings())
        for n in SIM_NODES:
            self.world.add_server(n)
        self.world.start_quorum()
        self.world.start_server(SIM_NODES[0], create=CreateSpec("bench", "bench", SIM_NODES))
        for i, n in enumerate(SIM_NODES[1:]):
            self.world.schedule(50 + 50 * i, lambda n=n: self.world.start_server(n))
        self.world.run_until(SIM_SETTLE_MS)
        self.feed = ReplicaFeed.from_records(FOLLOWER, self.world.servers[FOLLOWER].replica)
        self.requests = 0

    async def pump(self) -> None:
        while True:
            self.world.run_until(self.world.elapsed + PUMP_TICK_MS)
            self.feed.append(self.world.servers[FOLLOWER].replica[self.feed.seq:])
            await asyncio.sleep(PUMP_TICK_MS / 1000)

    async def admin(self, op: str, args: dict[str, Any]) -> m.AdminReply:
        self.requests += 1
        rid = f"b{self.requests}"
        self.world.admin(FOLLOWER, op, rid, **args)  # the follower forwards it to the leader
        while rid not in self.world.admin_replies:
            await asyncio.sleep(PUMP_TICK_MS / 1000)
        return self.world.admin_replies.pop(rid)

    def health(self) -> NodeHealth:
        view = self.feed.state.membership
        return NodeHealth(FOLLOWER, "follower", view.leader, view.epoch, self.feed.seq, len(self.world.qdisk.records))


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def ryw_latency(commands: int) -> dict[str, list[float]]:
    cluster = RealTimeCluster()
    app = create_app(cluster.feed, admin=cluster.admin, health=cluster.health, token=TOKEN)
    runner, port = await serve(app, "127.0.0.1", 0)
    pump = asyncio.create_task(cluster.pump())
    out: dict[str, list[float]] = {"command_ms": [], "ryw_ms": [], "waited": []}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with ClientSession(f"http://127.0.0.1:{port}") as http:
            for i in range(commands):
                t0 = time.perf_counter()
                async with http.post(f"/v1/nodes/n3/{'pause' if i % 2 == 0 else 'resume'}", headers=auth) as resp:
                    assert resp.status == 200, await resp.text()
                    seq = (await resp.json())["seq"]
                t1 = time.perf_counter()
                behind = cluster.feed.seq < seq
                params = {"min_seq": str(seq), "timeout_ms": str(RYW_TIMEOUT_MS)}
                async with http.get("/v1/membership", params=params) as resp:
                    assert resp.status == 200 and (await resp.json())["seq"] >= seq
                t2 = time.perf_counter()
                out["command_ms"].append((t1 - t0) * 1000)
                out["ryw_ms"].append((t2 - t1) * 1000)
                out["waited"].append(float(behind))
    finally:
        pump.cancel()
        await runner.cleanup()
    return out


# --- report ----------------------------------------------------------------------------------------------


def report_wrk(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    print(f"\nwrk -t1 -c{args.connections} -d{args.duration}s --latency  GET /v1/membership  ({args.rounds} rounds)\n")
    print(f"{'server':<28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for kind, label in (("bare", "bare aiohttp, same bytes"), ("app", "roster app")):
        for i, r in enumerate(results[kind], 1):
            print(f"{label + f' #{i}':<28}{r['rps']:>10,.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}")
    med = {k: {f: statistics.median(r[f] for r in v) for f in ("rps", "p50", "p99")} for k, v in results.items()}
    rps_ratio = med["app"]["rps"] / med["bare"]["rps"]
    p99_ratio = med["app"]["p99"] / med["bare"]["p99"]
    print(f"\nmedian: app/bare req/s = {rps_ratio:.2f} (target >= {RPS_RATIO_TARGET}) "
          f"{'PASS' if rps_ratio >= RPS_RATIO_TARGET else 'MISS'};  "
          f"app/bare p99 = {p99_ratio:.2f} (target <= {P99_RATIO_TARGET}) "
          f"{'PASS' if p99_ratio <= P99_RATIO_TARGET else 'MISS'}")


def report_ryw(r: dict[str, list[float]]) -> None:
    n = len(r["ryw_ms"])
    print(f"\nread your write: {n} commands via follower {FOLLOWER} (POST pause|resume, then GET ?min_seq=<seq>)\n")
    print(f"{'':<36}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for key, label in (("command_ms", "admin command (POST, committed)"), ("ryw_ms", "GET ?min_seq after it")):
        v = r[key]
        print(f"{label:<36}{_pct(v, 50):>9.2f}{_pct(v, 99):>9.2f}{max(v):>9.2f}")
    print(f"\nthe follower's replica was behind the command's seq when the GET started in "
          f"{sum(r['waited']):.0f} of {n} cases")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="alternating wrk runs per server (default 2)")
    parser.add_argument("--commands", type=int, default=200, help="admin commands for read-your-write (default 200)")
    parser.add_argument("--serve", choices=("app", "bare"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve_forever(args.serve))
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk); skipping the throughput comparison", file=sys.stderr)
    else:
        report_wrk(wrk_comparison(args.duration, args.connections, args.rounds), args)
    report_ryw(asyncio.run(ryw_latency(args.commands)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
