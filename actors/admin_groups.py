"""Admin commands on resource groups and their resources: apply a declared set of groups,
bring a group online or take it offline, restart a resource in place. Pure decisions like
`actors/admin.py` (whose `decide` dispatches here): (view, command) -> Decision.

`group-apply` is declarative and idempotent: it creates, changes and (with `prune`, which
`roster apply` sets) removes groups and resources until the config DB matches what was
declared; a second apply of the same file appends nothing. Everything is validated before
anything is drafted, so a bad file changes nothing.
"""

from __future__ import annotations

from typing import Any

from actors import messages as m
from actors.admin_decision import Context, Decision, accept, err, name_arg, unchanged
from events.resource_spec import FailoverPolicy, ResourceSpec
from actors.resource_types import resource_from_dict, validate_group
from events import types as ev
from events.record import Draft, draft

APPLY_GROUPS_MAX = 256


def group_online(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _group(ctx, msg)
    if isinstance(name, Decision):
        return name
    cfg, gv = ctx.view.config.groups[name], ctx.view.membership.groups.get(name)
    if not cfg.held and (gv is None or gv.state != "Failed"):
        return err(msg, 409, "wrong_state", f"group {name} is neither Failed nor taken offline")
    return accept([draft(ev.GroupOnlineRequested(group=name), by=ctx.leader)])


def group_offline(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _group(ctx, msg)
    if isinstance(name, Decision):
        return name
    if ctx.view.config.groups[name].held:
        return err(msg, 409, "wrong_state", f"group {name} is already offline")
    return accept([draft(ev.GroupOfflineRequested(group=name), by=ctx.leader)])


def resource_restart(ctx: Context, msg: m.AdminCommand) -> Decision:
    name = _group(ctx, msg)
    if isinstance(name, Decision):
        return name
    resource = name_arg(msg, "resource")
    if isinstance(resource, Decision):
        return resource
    if ctx.view.config.groups[name].resource(resource) is None:
        return err(msg, 404, "unknown_resource", f"group {name} has no resource {resource}")
    rt = ctx.view.resources.resources.get((name, resource))
    if rt is None or rt.state not in ("Online", "Starting"):
        return err(msg, 409, "wrong_state", f"{name}/{resource} is not running")
    return accept([draft(ev.ResourceRestartRequested(group=name, resource=resource), by=ctx.leader)])


def _group(ctx: Context, msg: m.AdminCommand) -> str | Decision:
    name = name_arg(msg, "group")
    if isinstance(name, Decision):
        return name
    if name not in ctx.view.config.groups:
        return err(msg, 404, "unknown_group", f"no group named {name}")
    return name


# --- apply ---------------------------------------------------------------------------------------------
def group_apply(ctx: Context, msg: m.AdminCommand) -> Decision:
    declared = msg.args.get("groups")
    if not isinstance(declared, dict) or len(declared) > APPLY_GROUPS_MAX:
        return err(msg, 422, "invalid_argument", f"'groups' must be an object of at most {APPLY_GROUPS_MAX} groups")
    wanted: dict[str, tuple[tuple[str, ...], bool, FailoverPolicy, tuple[ResourceSpec, ...]]] = {}
    for name, body in sorted(declared.items()):
        checked = _check_group(ctx, msg, name, body)
        if isinstance(checked, Decision):
            return checked
        wanted[name] = checked
    drafts: list[Draft] = []
    for name, spec in wanted.items():
        drafts += _group_drafts(ctx, name, *spec)
    if msg.args.get("prune", False):
        drafts += [draft(ev.GroupDeleted(group=g), by=ctx.leader) for g in sorted(ctx.view.config.groups)
                   if g not in wanted]
    if not drafts:  # idempotent: the cluster already matches the file
        return unchanged(msg, ctx.view, "nothing to change: the cluster already matches")
    return accept(drafts)


def _check_group(ctx: Context, msg: m.AdminCommand, name: str, body: Any) -> tuple | Decision:
    checked_name = name_arg(msg.model_copy(update={"args": {"group": name}}), "group")
    if isinstance(checked_name, Decision):
        return checked_name
    if not isinstance(body, dict):
        return err(msg, 422, "invalid_argument", f"group {name!r}: must be an object")
    owners = body.get("preferred_owners", [])
    if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
        return err(msg, 422, "invalid_argument", f"group {name!r}: 'preferred_owners' must be a list of node names")
    unknown = [o for o in owners if not ctx.view.config.is_member(o)]
    if unknown:
        return err(msg, 422, "invalid_argument", f"group {name!r}: preferred owners are not members: {', '.join(unknown)}")
    try:
        failover = FailoverPolicy.model_validate(body.get("failover", {}))
    except ValueError as exc:
        return err(msg, 422, "invalid_argument", f"group {name!r}: failover: {str(exc).splitlines()[-1].strip()}")
    declared = body.get("resources", [])
    if not isinstance(declared, list):
        return err(msg, 422, "invalid_resource", f"group {name!r}: 'resources' must be a list")
    specs: list[ResourceSpec] = []
    for raw in declared:
        spec = resource_from_dict(raw, name) if isinstance(raw, dict) else f"group {name!r}: a resource must be an object"
        if isinstance(spec, str):
            return err(msg, 422, "invalid_resource", spec)
        specs.append(spec)
    group = validate_group(specs, name)
    if isinstance(group, str):
        return err(msg, 422, "invalid_resource", group)
    return tuple(owners), bool(body.get("failback", False)), failover, group


def _group_drafts(ctx: Context, name: str, owners: tuple[str, ...], failback: bool, failover: FailoverPolicy,
                  specs: tuple[ResourceSpec, ...]) -> list[Draft]:
    by = ctx.leader
    current = ctx.view.config.groups.get(name)
    out: list[Draft] = []
    if current is None:
        out.append(draft(ev.GroupCreated(group=name, preferred_owners=owners, failback=failback), by=by))
        if failover != FailoverPolicy():
            out.append(draft(ev.GroupPolicyChanged(group=name, failover=failover), by=by))
        return out + [draft(ev.ResourceAdded(group=name, spec=s), by=by) for s in specs]
    if (current.preferred_owners, current.failback, current.failover) != (owners, failback, failover):
        out.append(draft(ev.GroupPolicyChanged(group=name, failover=failover, preferred_owners=owners,
                                               failback=failback), by=by))
    names = {s.name for s in specs}
    out += [draft(ev.ResourceRemoved(group=name, resource=s.name), by=by) for s in current.resources if s.name not in names]
    for s in specs:
        old = current.resource(s.name)
        if old is None:
            out.append(draft(ev.ResourceAdded(group=name, spec=s), by=by))
        elif old != s:
            out.append(draft(ev.ResourceChanged(group=name, spec=s), by=by))
    return out
