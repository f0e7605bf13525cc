"""Issue 12 §1: does a healthy cluster log only real changes? Not a test.

    .venv/bin/python bench/bench_idle.py [--minutes 10] [--burners 2]

`roster up --nodes 3` at the defaults (1000 ms x 5 misses) on embedded Ray, in a fresh data
dir, as a user runs it. Phase 1: idle for --minutes; every event the log gains is counted by
type (target: no HeartbeatMissed at all). Phase 2: --burners CPU-burning processes (one per
core on this 2-core box) for another --minutes (target: no NodeDown of a live node; misses
are reported). The burners and `roster up` are this script's children, stopped by their own
pids (SIGKILL for the burners, SIGINT — a planned stop — for `roster up`).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.ray_helpers import free_port  # noqa: E402

ROSTER = [str(Path(sys.executable).parent / "roster")]  # the venv's entry point, as a user runs it
UP_TIMEOUT_S = 180
EXIT_TIMEOUT_S = 120
POLL_S = 2.0
PAGE_EVENTS = 1000


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def events_after(base: str, seq: int) -> list[dict]:
    out, nxt = [], seq + 1
    while True:
        page = get(f"{base}/v1/events?from={nxt}&limit={PAGE_EVENTS}")
        out += page["events"]
        if not page["more"]:
            return out
        nxt = page["next"]


def all_online(base: str) -> int | None:
    try:
        doc = get(f"{base}/v1/membership")
    except OSError:
        return None
    ok = len(doc["nodes"]) == 3 and all(n["state"] == "Online" for n in doc["nodes"])
    return doc["seq"] if ok else None


def phase(base: str, minutes: float, label: str) -> dict:
    seq0 = get(f"{base}/v1/membership")["seq"]
    load0 = os.getloadavg()
    time.sleep(minutes * 60)
    evs = events_after(base, seq0)
    by_type = collections.Counter(e["type"] for e in evs)
    return {"phase": label, "minutes": minutes, "from_seq": seq0, "events": len(evs), "by_type": dict(by_type),
            "misses": [(e["node"], e["data"]["count"]) for e in evs if e["type"] == "HeartbeatMissed"],
            "node_down": [e["node"] for e in evs if e["type"] == "NodeDown"],
            "load_start": [round(x, 2) for x in load0], "load_end": [round(x, 2) for x in os.getloadavg()]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--burners", type=int, default=2)
    args = ap.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ROSTER_", "RAY_ADDRESS"))}
        up = subprocess.Popen([*ROSTER, "up", "--nodes", "3", "--data-dir", f"{tmp}/data", "--http-port", str(port)],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        burners: list[subprocess.Popen] = []
        try:
            deadline = time.monotonic() + UP_TIMEOUT_S
            while all_online(base) is None:
                if time.monotonic() > deadline or up.poll() is not None:
                    raise SystemExit("roster up did not bring 3 nodes Online")
                time.sleep(POLL_S)
            results = [phase(base, args.minutes, "idle")]
            print(json.dumps(results[-1]), flush=True)
            burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burners)]
            results.append(phase(base, args.minutes, f"{args.burners} CPU burners"))
            print(json.dumps(results[-1]), flush=True)
        finally:
            for b in burners:
                b.kill()
                b.wait()
            up.send_signal(signal.SIGINT)
            try:
                up.wait(EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
    for r in results:
        print(f"| {r['phase']} | {r['minutes']:g} min | {r['events']} | {len(r['misses'])} | {len(r['node_down'])} | "
              f"{r['load_start'][0]} → {r['load_end'][0]} | {r['by_type']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
