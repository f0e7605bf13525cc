"""The owner's side of resource groups: what runs here, in which order, and what to do
when a resource fails (WSFC RestartThreshold / RestartPeriod; FailoverThreshold is the
leader's, in `actors/roles/leader.py`).

Which groups may run here is derived from the view and the role (`actors/groups.py`). For
each such group this module keeps one `GroupRun` and moves every resource towards what it
should be, one rule for both directions:

  a resource should run  ⇔  its group may run here, has not failed here, and every resource
                             it depends on is Online.

So resources start in dependency order and stop in reverse (a resource stops only once
nothing that depends on it still runs), a failed dependency takes its dependents down and
brings them back after its restart, and a group that leaves this node stops as a whole.
A group counts as running here (`node.running`, and what heartbeats report) until its last
resource is provably stopped: that is the leader's proof before it starts it elsewhere.

The shell executes `StartResource` / `StopResource` and reports `ResourceStarted`,
`ResourceFailed`, `ResourceStopped`; it never restarts on its own. Every change is
reported to the leader as an event draft (`report`), re-sent until the log shows it.
"""

from __future__ import annotations

from actors import messages as m
from actors.effects import Effect, Send, SetRunDeadline, SetTimer, StartGroup, StartResource, StopGroup, StopResource
from actors.node_state import GroupRun, LeaderState, NodeState, ResourceRun, RunnerState, Timer
from events.resource_spec import ResourceSpec
from actors.resource_types import start_order
from events import types as ev
from events.record import draft

REPORT_TYPES = ("ResourceOnline", "ResourceFailed", "ResourceRestarted", "ResourceOffline")


def runner(node: NodeState) -> RunnerState:
    return node.runner


# --- the step's last act: bring what runs here in line with what may --------------------------------
def sync(node: NodeState, now: int, want: set[str], run_until: int) -> list[Effect]:
    st = runner(node)
    out: list[Effect] = []
    if not want and not st.groups:  # (most steps of a node that runs nothing)
        node.running = set()
        return []
    for g in sorted(want.difference(st.groups)):
        st.groups[g] = GroupRun({s.name: ResourceRun(s) for s in _specs(node, g)})
        out.append(StartGroup(g))
    for g in sorted(st.groups):
        if g in want:
            _refresh_specs(node, g, st.groups[g])
        out += _advance(node, g, st.groups[g], g in want, now)
        if g not in want and all(r.phase == "stopped" for r in st.groups[g].resources.values()):
            del st.groups[g]
            out.append(StopGroup(g))
    node.running = set(st.groups)
    return out + _deadline(node, run_until) + _restart_timer(node, now)


def _specs(node: NodeState, group: str) -> tuple[ResourceSpec, ...]:
    cfg = node.view.config.groups.get(group)
    return start_order(cfg.resources) if cfg is not None else ()


def _refresh_specs(node: NodeState, group: str, run: GroupRun) -> None:
    """Resources added to (or removed from) the group's config while it runs here."""
    cfg = node.view.config.groups.get(group)
    if cfg is not None and cfg is run.synced:
        return
    specs = start_order(cfg.resources) if cfg is not None else ()
    names = {s.name for s in specs}
    for s in specs:
        current = run.resources.get(s.name)
        if current is None:
            run.resources[s.name] = ResourceRun(s)
        elif current.spec != s and current.phase == "stopped":
            current.spec = s  # a changed spec takes effect at its next start
    for name in [n for n in run.resources if n not in names and run.resources[n].phase == "stopped"]:
        del run.resources[name]
    order = [s.name for s in specs] + [n for n in run.resources if n not in names]
    run.resources = {n: run.resources[n] for n in order}
    settled = len(run.resources) == len(specs) and all(run.resources[s.name].spec == s for s in specs)
    run.synced = cfg if settled else None


def _should_run(run: GroupRun, res: ResourceRun, wanted: bool, configured: set[str], now: int) -> bool:
    if not wanted or run.failed or res.restart_pending or res.spec.name not in configured:
        return False
    if res.restart_at is not None and now < res.restart_at:
        return False
    # A dependency about to restart counts as down: its dependents stop first (else it waits for
    # them to stop and they wait for it to stop, and an admin restart of it does nothing).
    return all((dep := run.resources.get(d)) is not None and dep.phase == "online" and not dep.restart_pending
               for d in res.spec.depends_on)


def _config_names(node: NodeState, group: str) -> set[str]:
    cfg = node.view.config.groups.get(group)
    return {s.name for s in cfg.resources} if cfg is not None else set()


def _advance(node: NodeState, group: str, run: GroupRun, wanted: bool, now: int) -> list[Effect]:
    out: list[Effect] = []
    cfg = node.view.config.groups.get(group)
    # A synced run holds exactly the configured resources (`_refresh_specs`).
    configured = run.resources.keys() if cfg is not None and cfg is run.synced else _config_names(node, group)
    # Stop first, in reverse order: a resource stops once nothing that depends on it runs.
    for res in reversed(list(run.resources.values())):
        if res.phase in ("starting", "online") and not _should_run(run, res, wanted, configured, now):
            if not any(d.phase != "stopped" and res.spec.name in d.spec.depends_on for d in run.resources.values()):
                res.phase = "stopping"
                out.append(StopResource(group, res.spec.name))
    for res in run.resources.values():
        if res.phase == "stopped" and _should_run(run, res, wanted, configured, now):
            if res.restart_at is not None:
                res.restart_at = None
                res.attempt += 1
                report(node, ev.ResourceRestarted(group=group, resource=res.spec.name, node=node.id,
                                                  attempt=res.attempt))
            res.phase = "starting"
            out.append(StartResource(group, res.spec, res.attempt))
    return out


def _deadline(node: NodeState, until: int) -> list[Effect]:
    """Tell the shell when everything here must be stopped if we hear nothing (S8c): the
    same bound that decides what may run (`groups.run_until`); its watchdog enforces it."""
    st = runner(node)
    if not st.groups or until == st.deadline:
        return []
    st.deadline = until
    return [SetRunDeadline(until)]


def _restart_timer(node: NodeState, now: int) -> list[Effect]:
    """Wake when the next restart delay ends (one already over waits for its dependencies)."""
    due = [r.restart_at for g in runner(node).groups.values() for r in g.resources.values()
           if r.restart_at is not None and r.restart_at > now]
    return [SetTimer(Timer.RESTART, min(due))] if due else []


# --- what the shell reports ---------------------------------------------------------------------------
def _find(node: NodeState, group: str, resource: str) -> ResourceRun | None:
    run = runner(node).groups.get(group)
    return run.resources.get(resource) if run is not None else None


def on_started(node: NodeState, msg: m.ResourceStarted, now: int, sender: str) -> list[Effect]:
    res = _find(node, msg.group, msg.resource)
    if res is None or res.phase != "starting" or res.attempt != msg.attempt:
        return []  # a late answer to an attempt we already gave up on
    res.phase = "online"
    report(node, ev.ResourceOnline(group=msg.group, resource=msg.resource, node=node.id, attempt=msg.attempt,
                                   endpoint=msg.endpoint))
    return []


def on_failed(node: NodeState, msg: m.ResourceFailed, now: int, sender: str) -> list[Effect]:
    run = runner(node).groups.get(msg.group)
    res = _find(node, msg.group, msg.resource)
    if run is None or res is None or res.attempt != msg.attempt or res.phase not in ("starting", "online"):
        return []
    policy = res.spec.restart
    res.failures = [t for t in res.failures if now - t < policy.period_ms] + [now]
    exhausted = len(res.failures) > policy.threshold
    report(node, ev.ResourceFailed(group=msg.group, resource=msg.resource, node=node.id, attempt=msg.attempt,
                                   phase=msg.phase, reason=msg.reason, exit_code=msg.exit_code,
                                   restarts_exhausted=exhausted))
    if exhausted:
        run.failed = True  # the whole group stops here; the leader moves it (FailoverThreshold)
    else:
        res.restart_pending = True
    res.phase = "stopping"  # whatever is left of it (a hung process, its children) goes first
    return [StopResource(msg.group, msg.resource)]


def on_stopped(node: NodeState, msg: m.ResourceStopped, now: int, sender: str) -> list[Effect]:
    res = _find(node, msg.group, msg.resource)
    if res is None or res.phase != "stopping":
        return []
    res.phase = "stopped"
    if res.restart_pending:
        res.restart_pending = False
        res.restart_at = now + res.spec.restart.delay_ms
    reason = "stopped (killed after the stop timeout)" if msg.forced else "stopped"
    report(node, ev.ResourceOffline(group=msg.group, resource=msg.resource, node=node.id, reason=reason))
    return []


def on_restart_requested(node: NodeState, group: str, resource: str, now: int) -> None:
    """An admin's restart in place: stop, then start again at once (not counted as a failure)."""
    res = _find(node, group, resource)
    if res is not None and res.phase in ("starting", "online"):
        res.restart_pending = True
        res.restart_at = None


# --- reports to the leader --------------------------------------------------------------------------------
def report(node: NodeState, event: ev.Event) -> None:
    st = runner(node)
    st.unreported.append(draft(event, by=node.id, node=node.id))
    st.news = True


def flush_reports(node: NodeState, *, resend: bool) -> list[Effect]:
    """Our reports go to the leader (ours: into the outbox): new ones at once, and all that
    the log does not show yet again on every tick (a lost message loses no report)."""
    st = runner(node)
    if not st.unreported or not (st.news or resend):
        return []
    st.news = False
    if isinstance(node.role_state, LeaderState):
        node.role_state.outbox += st.unreported
        st.unreported = []
        return []
    if node.leader in (None, node.id):
        return []
    return [Send(m.node_addr(node.leader), m.ForwardDrafts(drafts=tuple(st.unreported)))]


def confirm_reports(node: NodeState, records: list) -> None:
    """Drop every report the committed records now hold."""
    st = runner(node)
    if st.unreported:
        seen = {(r.by, r.event) for r in records if r.event.type in REPORT_TYPES}
        st.unreported = [d for d in st.unreported if (d.by, d.event) not in seen]
