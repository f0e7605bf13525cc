"""Verbs for resource groups and their resources: `group create|move|delete|status|online|offline`,
`resource restart GROUP RES`, and `apply FILE` (the declarative TOML file: creates, changes and
removes groups and resources until the cluster matches it; a second apply changes nothing).

Like every verb in `cli_cluster`: any node answers, admin commands send the token, errors are
one line and exit 1 (2 for a bad argument).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from roster.apply_file import ApplyFileError, load_apply_file
from roster.cli_cluster import EXIT_FAILED, Api, admin_call, common_options, quote_name, token_of
from roster.cli_format import emit_json, table
from roster.errors import UserError

_DONE = {"group-online": "brought online", "group-offline": "taken offline", "resource-restart": "restarting"}


def cmd_group_create(args: argparse.Namespace) -> int:
    owners = [o.strip() for o in (args.owners or "").split(",") if o.strip()]
    return admin_call(args, "POST", "/v1/groups", {"name": args.name, "preferred_owners": owners,
                                                "failback": args.failback})


def cmd_group_move(args: argparse.Namespace) -> int:
    return admin_call(args, "POST", f"/v1/groups/{quote_name(args.name)}/move", {"node": args.node})


def cmd_group_delete(args: argparse.Namespace) -> int:
    return admin_call(args, "DELETE", f"/v1/groups/{quote_name(args.name)}")


def _command(args: argparse.Namespace, path: str, what: str) -> int:
    doc = Api(args.url, token_of(args)).call("POST", path)
    if args.json:
        emit_json(doc)
    else:
        print(f"{what} {_DONE.get(str(doc.get('op')), doc.get('op'))} (seq {doc.get('seq', '-')})")
    return 0


def cmd_group_online(args: argparse.Namespace) -> int:
    return _command(args, f"/v1/groups/{quote_name(args.name)}/online", f"group {args.name}")


def cmd_group_offline(args: argparse.Namespace) -> int:
    return _command(args, f"/v1/groups/{quote_name(args.name)}/offline", f"group {args.name}")


def cmd_resource_restart(args: argparse.Namespace) -> int:
    path = f"/v1/groups/{quote_name(args.group)}/resources/{quote_name(args.resource)}/restart"
    return _command(args, path, f"resource {args.group}/{args.resource}")


def cmd_group_status(args: argparse.Namespace) -> int:
    doc = Api(args.url).call("GET", f"/v1/groups/{quote_name(args.name)}")
    if args.json:
        emit_json(doc)
        return 0
    try:
        _print_group(doc)
    except (KeyError, TypeError):
        raise UserError(f"{args.url} answered /v1/groups/{args.name} in an unexpected shape", EXIT_FAILED) from None
    return 0


def _failure(f: dict[str, Any] | None) -> str:
    if not f:
        return "-"
    code = f" (exit {f['exit_code']})" if f.get("exit_code") is not None else ""
    return f"{f['phase']}: {f['reason']}{code} on {f['node']} at seq {f['seq']}"


def _print_group(doc: dict[str, Any]) -> None:
    out = sys.stdout
    endpoint = f"  address /svc/{doc['name']}/ -> {doc['endpoint']}" if doc.get("endpoint") else ""
    print(f"group {doc['name']}  {doc['state']}  owner {doc['owner'] or '-'}  seq {doc['seq']}{endpoint}", file=out)
    fo = doc["failover"]
    print(f"preferred owners {','.join(doc['preferred_owners']) or '-'}  failback {doc['failback']}  "
          f"failover at most {fo['threshold']} per {fo['period_ms'] // 1000} s\n", file=out)
    table(("RESOURCE", "TYPE", "STATE", "OWNER", "ATTEMPT", "RESTARTS", "DEPENDS ON", "ENDPOINT", "LAST FAILURE"),
          [(r["name"], r["type"], r["state"], r["owner"], r["attempt"], r["restarts"], r["depends_on"],
            r["endpoint"], _failure(r["last_failure"])) for r in doc["resources"]], out)


def cmd_apply(args: argparse.Namespace) -> int:
    try:
        groups = load_apply_file(args.file)  # the whole file is checked before anything is sent
    except ApplyFileError as exc:
        raise UserError(str(exc), EXIT_FAILED) from None
    body = {"groups": {name: g.as_args() for name, g in groups.items()}, "prune": not args.keep_others}
    if args.dry_run:
        emit_json(body)
        return 0
    doc = Api(args.url, token_of(args)).call("POST", "/v1/apply", body)
    if args.json:
        emit_json(doc)
    else:
        names = ", ".join(groups) or "no groups"
        print(f"applied {args.file} ({names}) at seq {doc.get('seq', '-')}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    read, admin = common_options(False), common_options(True)
    group = subparsers.add_parser("group", help="resource groups: create, move, delete, status, online, offline")
    gsub = group.add_subparsers(dest="group_command", required=True)
    p = gsub.add_parser("create", parents=[admin], help="create a resource group")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--owners", metavar="A,B", help="preferred owners, in order")
    p.add_argument("--failback", action="store_true", help="move back to the first preferred owner when it returns")
    p.set_defaults(func=cmd_group_create)
    p = gsub.add_parser("move", parents=[admin], help="move a group to an Online node")
    p.add_argument("name", metavar="NAME")
    p.add_argument("node", metavar="NODE")
    p.set_defaults(func=cmd_group_move)
    p = gsub.add_parser("delete", parents=[admin], help="delete a resource group")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_group_delete)
    p = gsub.add_parser("status", parents=[read], help="a group, its resources and their states")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_group_status)
    for verb, func, text in (("online", cmd_group_online, "bring a Failed or offline group online"),
                             ("offline", cmd_group_offline, "stop a group and place it nowhere")):
        p = gsub.add_parser(verb, parents=[admin], help=text)
        p.add_argument("name", metavar="NAME")
        p.set_defaults(func=func)

    res = subparsers.add_parser("resource", help="one resource of a group: restart")
    rsub = res.add_subparsers(dest="resource_command", required=True)
    p = rsub.add_parser("restart", parents=[admin], help="restart a running resource in place")
    p.add_argument("group", metavar="GROUP")
    p.add_argument("resource", metavar="RESOURCE")
    p.set_defaults(func=cmd_resource_restart)

    p = subparsers.add_parser("apply", parents=[admin], help="make the groups and resources match a TOML file")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--keep-others", action="store_true", help="leave groups the file does not name (default: remove)")
    p.add_argument("--dry-run", action="store_true", help="check the file and print what would be sent")
    p.set_defaults(func=cmd_apply)
