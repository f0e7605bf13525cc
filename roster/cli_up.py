"""`roster up` and `roster down`: a Roster cluster on Ray.

With no `--address`, `up` starts an embedded local Ray and N logical nodes on it, and stays
in the foreground: Ctrl-C is a planned leave of every node (ClusterExit), then Ray stops.
With `--address`, it joins an existing Ray cluster and places one Roster node per Ray node;
`--detach` leaves it running, and `roster down --address ...` stops it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from roster.datadir import init_data_dir, secret_path, token_path
from roster.errors import UserError

DEFAULT_HTTP_PORT = 8700
ALL_ONLINE_TIMEOUT_S = 60.0
POLL_PERIOD_S = 0.2
MAX_LOCAL_NODES = 16
EMBEDDED_RAY_CPUS = 2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="start (or resume) a Roster cluster on Ray")
    p.add_argument("--nodes", type=int, default=3, help="logical nodes on embedded Ray (default 3)")
    p.add_argument("--data-dir", type=Path, default=Path("roster-data"), help="logs, secret and token (default ./roster-data)")
    p.add_argument("--name", default="roster", help="the cluster's name, on first start")
    p.add_argument("--http-host", default="127.0.0.1", help="where nodes serve HTTP (default 127.0.0.1)")
    p.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT, help="first node's port; the others follow")
    p.add_argument("--address", help="an existing Ray cluster ('auto' or host:port): one Roster node per Ray node")
    p.add_argument("--detach", action="store_true", help="return once all nodes are Online (needs --address)")
    p.add_argument("--auto-add", action="store_true", help="add every new Ray node as a member")
    p.add_argument("--heartbeat-ms", type=int, default=1000, help="heartbeat interval (default 1000)")
    p.add_argument("--misses", type=int, default=5, help="missed heartbeats before a regroup (default 5)")
    p.set_defaults(func=up)
    d = sub.add_parser("down", help="stop a detached Roster cluster (planned leave of every node)")
    d.add_argument("--address", default="auto", help="the Ray cluster (default auto)")
    d.set_defaults(func=down)


def _settings(args: argparse.Namespace) -> dict[str, int]:
    from pydantic import ValidationError

    from actors.settings import ProtocolSettings

    try:
        s = ProtocolSettings(heartbeat_interval_ms=args.heartbeat_ms, heartbeat_misses_before_regroup=args.misses)
    except ValidationError as exc:
        raise UserError(f"bad timing settings: {exc.errors()[0]['msg']}") from None
    return s.as_event_settings()


def _check(args: argparse.Namespace) -> None:
    if args.detach and not args.address:
        raise UserError("--detach needs --address: an embedded Ray stops with this command")
    if not args.address and not 1 <= args.nodes <= MAX_LOCAL_NODES:
        raise UserError(f"--nodes must be between 1 and {MAX_LOCAL_NODES}")
    if not 0 < args.http_port < 65536:
        raise UserError("--http-port must be a TCP port")


def _init_ray(address: str | None) -> None:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled" if address is None else os.environ.get("RAY_AUTH_MODE", "token"))
    from roster.ray_runtime.shell import NAMESPACE

    if address is None:
        ray.init(address="local", num_cpus=EMBEDDED_RAY_CPUS, include_dashboard=False, namespace=NAMESPACE,
                 log_to_driver=False, configure_logging=False)
    else:
        try:
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"cannot reach the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None


def start_cluster(config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Create (or find) the Supervisor and bring the cluster up. Returns (supervisor, description)."""
    import ray

    from roster.ray_runtime.shell import NAMESPACE
    from roster.ray_runtime.supervisor import HEAD_RESOURCE, SUPERVISOR_NAME, Supervisor

    sup = Supervisor.options(name=SUPERVISOR_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                             resources=HEAD_RESOURCE).remote(config)
    return sup, ray.get(sup.up.remote())


def wait_all_online(node_ids: list[str], timeout_s: float = ALL_ONLINE_TIMEOUT_S,
                    stop: list[int] | None = None) -> dict[str, dict[str, Any]]:
    """Every node Online (or Paused) in its own replica, and one leader. Raises UserError on
    timeout; returns early (with what it has) once `stop` holds a signal."""
    import ray

    from actors import messages as m
    from roster.ray_runtime.shell import NAMESPACE

    deadline = time.monotonic() + timeout_s
    statuses: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and not stop:
        statuses = {}
        for n in node_ids:
            try:
                statuses[n] = ray.get(ray.get_actor(m.node_addr(n), namespace=NAMESPACE).status.remote(), timeout=5)
            except Exception:  # noqa: BLE001 - not started yet
                continue
        leaders = {s["leader"] for s in statuses.values()}
        if len(statuses) == len(node_ids) and len(leaders) == 1 and None not in leaders and \
                all(s["state"] in ("Online", "Paused") and s["role"] in ("leader", "follower") for s in statuses.values()):
            return statuses
        time.sleep(POLL_PERIOD_S)
    if stop:
        return statuses
    states = ", ".join(f"{n}={s.get('role')}/{s.get('state')}" for n, s in sorted(statuses.items()))
    raise UserError(f"not every node came Online within {timeout_s:g} s ({states or 'no node answered'})")


def up(args: argparse.Namespace) -> int:
    _check(args)
    settings = _settings(args)
    members = tuple(f"n{i}" for i in range(1, args.nodes + 1))
    ident, created = init_data_dir(args.data_dir, args.name, members)
    token = token_path(args.data_dir).read_text().strip()
    _init_ray(args.address)
    config = {"data_dir": str(args.data_dir.resolve()), "cluster_id": ident.cluster_id, "cluster_name": ident.name,
              "members": list(ident.members), "create": created, "settings": settings,
              "placement": "per-ray-node" if args.address else "local", "nodes": len(ident.members),
              "http_host": args.http_host, "http_port": args.http_port, "token": token, "auto_add": args.auto_add}
    stop: list[int] = []
    if not args.detach:  # before anything is printed: a Ctrl-C right after "Online" must leave cleanly
        _catch_signals(stop)
    sup, desc = start_cluster(config)
    statuses = wait_all_online(sorted(desc["nodes"]), stop=stop)
    if stop:  # Ctrl-C while starting: leave with whatever came up
        return _foreground(sup, stop)
    _print_up(args, ident, created, desc, statuses)
    if args.detach:
        return 0
    return _foreground(sup, stop)


def _print_up(args: argparse.Namespace, ident: Any, created: bool, desc: dict[str, Any], statuses: dict[str, Any]) -> None:
    verb = "created" if created else "resumed"
    print(f"cluster {ident.name} ({ident.cluster_id}) {verb}; data in {args.data_dir}")
    if created:
        print(f"secret: {secret_path(args.data_dir)} (0600)   admin token: {token_path(args.data_dir)} (0600)")
    for n, url in sorted(desc["nodes"].items()):
        s = statuses[n]
        print(f"  {n:<6} {s['state']:<8} {s['role']:<9} {url or '-'}")
    leader = next(iter({s['leader'] for s in statuses.values()}))
    print(f"leader {leader}; all {len(statuses)} nodes Online" + ("" if args.detach else ". Ctrl-C leaves the cluster."))
    sys.stdout.flush()


def _catch_signals(stop: list[int]) -> None:
    # A plain flag: a signal handler that takes a lock (threading.Event.set) can deadlock with
    # the main thread waiting on that same lock.
    signal.signal(signal.SIGINT, lambda signum, _frame: stop.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, _frame: stop.append(signum))


def _foreground(sup: Any, stop: list[int]) -> int:
    import ray

    while not stop:
        time.sleep(POLL_PERIOD_S)
    print("leaving: ClusterExit from every node ...", flush=True)
    result = ray.get(sup.down.remote(True))
    print(_groups_line(result["stop_cluster"]))
    for n, r in sorted(result["left"].items()):
        print(f"  {n:<6} {'left' if r.get('ok') else 'failed: ' + str(r.get('error'))}")
    _kill_all()
    ray.shutdown()
    return 0


def _groups_line(reply: dict[str, Any]) -> str:
    if reply.get("ok"):
        return f"  groups offline (cluster stopping) at seq {reply.get('seq')}"
    return f"  groups: {reply.get('error')}"


def _kill_all() -> None:
    import ray

    from roster.ray_runtime.shell import NAMESPACE

    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == NAMESPACE:
            try:
                ray.kill(ray.get_actor(actor["name"], namespace=NAMESPACE), no_restart=True)
            except ValueError:
                pass


def down(args: argparse.Namespace) -> int:
    import ray

    from roster.ray_runtime.shell import NAMESPACE
    from roster.ray_runtime.supervisor import SUPERVISOR_NAME

    _init_ray(args.address)
    try:
        sup = ray.get_actor(SUPERVISOR_NAME, namespace=NAMESPACE)
    except ValueError:
        raise UserError(f"no Roster cluster runs on the Ray cluster at {args.address}") from None
    result = ray.get(sup.down.remote(True))
    _kill_all()
    print(_groups_line(result["stop_cluster"]))
    print(f"stopped; {sum(1 for r in result['left'].values() if r.get('ok'))} nodes left the cluster")
    return 0
