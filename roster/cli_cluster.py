"""Verbs that talk to a running cluster over HTTP: `status`, `pause`, `resume`, `evict`, `leave`,
`add-node`, `watch` (the group, resource and apply verbs are in `cli_groups`).

Any node answers (reads from its replica; commands are forwarded to the leader). Admin
commands send the token from `$ROSTER_TOKEN`, else `<data dir>/admin.token`. Stdlib urllib
only: a CLI needs no event loop. Errors are one line and exit 1 (2 for a bad argument).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

from events import codec
from roster.cli_format import cell, emit_json, seq_arg, table
from roster.datadir import read_token
from roster.errors import UserError

DEFAULT_URL = "http://127.0.0.1:8700"
DEFAULT_DATA_DIR = "./roster-data"
TOKEN_ENV = "ROSTER_TOKEN"
REQUEST_TIMEOUT_S = 30.0  # the server gives the leader 10 s; this leaves room for the network
WATCH_READ_TIMEOUT_S = 60.0  # the stream sends a keepalive every 15 s; silence past this is a dead link
WATCH_RECONNECT_ATTEMPTS = 5  # consecutive failed reconnects before `watch` gives up
WATCH_RECONNECT_DELAY_S = 1.0
EXIT_FAILED = 1
EXIT_USAGE = 2
WATCH_WIDTHS = (6, 5, 24, 18, 6, 6)  # SEQ EPOCH TS TYPE NODE BY, then DATA


# --- talking to a node -------------------------------------------------------------------------------


class Api:
    def __init__(self, url: str, token: str | None = None) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UserError(f"--url must be an http:// or https:// address, not {url!r}", EXIT_USAGE)
        self.url, self.token = url.rstrip("/"), token

    def _request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
                 ) -> urllib.request.Request:
        data = None if body is None else codec.dumps(body)
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token is not None:
            req.add_header("Authorization", f"Bearer {self.token}")
        return req

    def open(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             timeout_s: float = REQUEST_TIMEOUT_S) -> Any:
        """The open response; HTTP errors and unreachable nodes become one-line UserErrors."""
        try:
            return urllib.request.urlopen(self._request(method, path, body, headers), timeout=timeout_s)
        except urllib.error.HTTPError as exc:
            raise UserError(_http_error(exc), EXIT_FAILED) from None
        except urllib.error.URLError as exc:
            raise UserError(f"cannot reach {self.url}: {_reason(exc.reason)}", EXIT_FAILED) from None
        except (TimeoutError, socket.timeout):
            raise UserError(f"no answer from {self.url} within {timeout_s:g} s", EXIT_FAILED) from None
        except (ConnectionError, OSError) as exc:
            raise UserError(f"cannot reach {self.url}: {_reason(exc)}", EXIT_FAILED) from None

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        with self.open(method, path, body) as resp:
            try:
                raw = resp.read()
                doc = codec.loads(raw)
            except (codec.CodecError, OSError):
                raise UserError(f"{self.url} answered {path} with something that is not JSON", EXIT_FAILED) from None
        if not isinstance(doc, dict):
            raise UserError(f"{self.url} answered {path} with something that is not a JSON object", EXIT_FAILED)
        return doc


def _reason(reason: Any) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


def _http_error(exc: urllib.error.HTTPError) -> str:
    try:
        doc = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        doc = {}
    if isinstance(doc, dict) and doc.get("detail"):
        return f"{doc['detail']} ({doc.get('error', 'error')}, HTTP {exc.code})"
    return f"HTTP {exc.code} {exc.reason}"


def token_of(args: argparse.Namespace) -> str:
    return read_token(Path(args.data_dir))  # $ROSTER_TOKEN, else <data dir>/admin.token


def quote_name(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# --- status --------------------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    query = {k: v for k, v in (("at", args.at), ("min_seq", args.min_seq)) if v is not None}
    path = "/v1/membership" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    doc = Api(args.url).call("GET", path)
    if args.json:
        emit_json(doc)
        return 0
    try:
        _print_status(doc)
    except (KeyError, TypeError):
        raise UserError(f"{args.url} answered /v1/membership in an unexpected shape", EXIT_FAILED) from None
    return 0


def _print_status(doc: dict[str, Any]) -> None:
    out = sys.stdout
    print(f"cluster {doc['cluster'] or '-'} (id {doc['cluster_id'] or '-'})  seq {doc['seq']}  "
          f"epoch {doc['epoch']}  leader {doc['leader'] or '-'}  ts {doc['ts'] or '-'}\n", file=out)
    table(("NODE", "STATE", "SINCE SEQ", "INCARNATION", "GROUPS", "REASON"),
           [(n["id"] + (" *" if n["leader"] else ""), n["state"] + (" (evicted)" if n["evicted"] else ""),
             n["since_seq"], n["incarnation"], n["groups"], n["reason"]) for n in doc["nodes"]], out)
    if doc["groups"]:
        print(file=out)
        table(("GROUP", "OWNER", "STATE", "SINCE SEQ", "PREFERRED OWNERS", "FAILBACK"),
               [(g["name"], g["owner"], g["state"], g["since_seq"], g["preferred_owners"], g["failback"])
                for g in doc["groups"]], out)


# --- admin commands ------------------------------------------------------------------------------------


_DONE = {"pause": "paused", "resume": "resumed", "evict": "evicted", "leave": "asked to leave",
         "add-node": "added", "group-create": "created", "group-move": "moved", "group-delete": "deleted"}


def admin_call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> int:
    doc = Api(args.url, token_of(args)).call(method, path, body)
    if args.json:
        emit_json(doc)
        return 0
    op = str(doc.get("op", ""))
    subject = f"group {doc['group']}" if "group" in doc else f"node {doc.get('node', '-')}"
    where = f" to {doc['node']}" if op == "group-move" else ""
    print(f"{subject} {_DONE.get(op, op)}{where} (seq {doc.get('seq', '-')})")
    return 0


def cmd_node_op(args: argparse.Namespace) -> int:
    path = f"/v1/nodes/{quote_name(args.node)}/{args.op}"
    if getattr(args, "drain", False):
        path += "?drain=true"
    return admin_call(args, "POST", path)


def cmd_add_node(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"id": args.node}
    if args.address:
        body["address"] = args.address
    return admin_call(args, "POST", "/v1/nodes", body)


# --- watch ---------------------------------------------------------------------------------------------


def _sse(resp: Any) -> Iterator[tuple[str | None, str, str]]:
    """(id, event, data) of each server-sent event, as lines arrive."""
    ev_id, ev_type, data = None, "message", []
    for raw in resp:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield ev_id, ev_type, "\n".join(data)
            ev_id, ev_type, data = None, "message", []
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "id":
                ev_id = value
            elif key == "event":
                ev_type = value
            elif key == "data":
                data.append(value)


def _print_event(env: dict[str, Any], as_json: bool) -> None:
    if as_json:  # one envelope per line, as `roster events --json` prints them
        sys.stdout.write(codec.dumps(env).decode() + "\n")
    else:
        cells = [str(env["seq"]), str(env["epoch"]), env["ts"], env["type"], cell(env["node"]), env["by"]]
        head = "  ".join(c.ljust(w) for c, w in zip(cells, WATCH_WIDTHS))
        sys.stdout.write(f"{head}  {cell(env['data'])}".rstrip() + "\n")
    sys.stdout.flush()


class _Cursor:
    """Where `watch` is in the stream: the last seq it printed (or started after), across reconnects."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.seen = 0
        self.connected = False


def _stream_once(api: Api, args: argparse.Namespace, cur: _Cursor) -> None:
    """Follow one connection until it ends (or --max-events is reached)."""
    query = {k: v for k, v in (("from", args.from_seq), ("type", args.type), ("node", args.node)) if v is not None}
    headers = {"Accept": "text/event-stream"}
    if cur.last is not None:  # a reconnect: resume right after what was printed, on any node
        headers["Last-Event-ID"] = str(cur.last)
        query.pop("from", None)
    path = "/v1/events/stream" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with api.open("GET", path, headers=headers, timeout_s=WATCH_READ_TIMEOUT_S) as resp:
        cur.connected = True
        head = resp.headers.get("X-Roster-Seq", "")
        if cur.last is None and args.from_seq is None and head.isdigit():
            cur.last = int(head)  # "from now on": a reconnect must not skip what came in between
        for ev_id, ev_type, data in _sse(resp):
            if ev_type == "reset":
                print("roster: warning: the node's replica was replaced by another history", file=sys.stderr)
                continue
            _print_event(codec.loads(data), args.json)
            cur.last = int(ev_id) if ev_id else cur.last
            cur.seen += 1
            if args.max_events is not None and cur.seen >= args.max_events:
                return


def cmd_watch(args: argparse.Namespace) -> int:
    api = Api(args.url)
    if not args.json:
        print("  ".join(h.ljust(w) for h, w in zip(("SEQ", "EPOCH", "TS", "TYPE", "NODE", "BY"), WATCH_WIDTHS))
              + "  DATA")
    cur, failures = _Cursor(), 0
    while args.max_events is None or cur.seen < args.max_events:
        before = cur.seen
        try:
            _stream_once(api, args, cur)
            failures = 0 if cur.seen > before else failures + 1
        except (UserError, OSError, ValueError) as exc:
            if not cur.connected:
                raise exc if isinstance(exc, UserError) else UserError(f"cannot follow {args.url}: {exc}") from None
            failures += 1
            reason = str(exc)
        else:
            reason = "the stream keeps ending"
        if failures > WATCH_RECONNECT_ATTEMPTS:
            raise UserError(f"lost the stream after seq {cur.last}: {reason}", EXIT_FAILED)
        if failures:
            time.sleep(WATCH_RECONNECT_DELAY_S)
    return 0


# --- registration --------------------------------------------------------------------------------------


def common_options(admin: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--url", default=DEFAULT_URL, help=f"any node's HTTP address (default {DEFAULT_URL})")
    p.add_argument("--json", action="store_true", help="JSON for scripts")
    if admin:
        p.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                       help=f"where admin.token is (default {DEFAULT_DATA_DIR}); ${TOKEN_ENV} overrides it")
    return p


def register(subparsers: argparse._SubParsersAction) -> None:
    read, admin = common_options(False), common_options(True)
    p = subparsers.add_parser("status", parents=[read], help="the cluster's membership, from any node")
    p.add_argument("--at", metavar="SEQ|TIME", help="the view at a seq or an ISO-8601 time")
    p.add_argument("--min-seq", type=seq_arg, metavar="SEQ", help="wait until the node has applied SEQ")
    p.set_defaults(func=cmd_status)

    for op, text in (("pause", "pause a node: it keeps its groups but gets no new ones (S12)"),
                     ("resume", "resume a paused node"), ("evict", "evict a member (S20)"),
                     ("leave", "make a node leave the cluster (S21)")):
        p = subparsers.add_parser(op, parents=[admin], help=text)
        p.add_argument("node", metavar="NODE")
        if op == "pause":
            p.add_argument("--drain", action="store_true", help="move its groups away first")
        p.set_defaults(func=cmd_node_op, op=op)

    p = subparsers.add_parser("add-node", parents=[admin], help="add a member (it can then join)")
    p.add_argument("node", metavar="NODE")
    p.add_argument("--address", help="where the node can be reached")
    p.set_defaults(func=cmd_add_node)

    p = subparsers.add_parser("watch", parents=[read], help="follow the cluster's events as they commit")
    p.add_argument("--from", dest="from_seq", type=seq_arg, metavar="SEQ", help="start at this seq (default: new ones)")
    p.add_argument("--type", metavar="TYPE", help="only events of this type")
    p.add_argument("--node", metavar="NODE", help="only events about this node")
    p.add_argument("--max-events", type=int, metavar="N", help="stop after N events")
    p.set_defaults(func=cmd_watch)
