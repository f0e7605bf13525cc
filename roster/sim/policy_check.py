"""Invariant 4's policy half (issue 10 §6): restart and failover counts never exceed their
thresholds, and a Failed group stays offline until an admin acts.

- Restarts in place, in simulated real time: when a resource is started again on the same
  server (attempt > 0), the failures of that resource there within its `restart.period_ms`
  (on that server's clock, the one its core counts by) are at most `restart.threshold`.
  A start on a new placement counts from zero, as the core's does.
- Failovers, in the log: a group is placed again after a resource ran out of restarts only
  while its exhausted failures in the `failover.period_ms` ending at the newest one are at
  most `failover.threshold` (the log's own clock, as the leader counts). Only the first
  placement after an exhaustion is its failover: one after a node failure with no new
  exhaustion (say, after an admin moved the group back) is not counted, as the leader's is not.
- A Failed group: no GroupMoved gives it an owner until GroupOnlineRequested, other than an
  admin's move (WSFC: it stays offline until an admin brings it online or moves it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from events.record import Record
from projections.state import ClusterState

Key = tuple[str, str, str]  # (server, group, resource)


def ts_ms(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass
class PolicyCheck:
    violations: list[str] = field(default_factory=list)
    failures: dict[Key, list[int]] = field(default_factory=dict)  # server-clock times, this placement
    attempts: dict[Key, int] = field(default_factory=dict)  # the attempt of the last start
    exhausted_at: dict[str, list[int]] = field(default_factory=dict)  # group -> log ts of exhausted failures
    failed: set[str] = field(default_factory=set)  # groups Failed by policy, not yet brought online
    # groups whose last exhausted failure has not led to a placement yet: the next placement is a
    # failover (a later one, after a node failure with no new exhaustion, is not)
    to_fail_over: set[str] = field(default_factory=set)

    # --- the simulated resource host's side ----------------------------------------------------------
    def resource_failed(self, key: Key, local_ms: int) -> None:
        self.failures.setdefault(key, []).append(local_ms)

    def resource_started(self, key: Key, attempt: int, threshold: int, period_ms: int, local_ms: int) -> None:
        last = self.attempts.get(key)
        self.attempts[key] = attempt
        if attempt == 0:  # a new placement here (or a new incarnation): the core counts afresh
            self.failures.pop(key, None)
            return
        if last is not None and attempt <= last:
            return  # started again after a stop (its group could not run here for a while): no restart
        recent = [t for t in self.failures.get(key, ()) if local_ms - t < period_ms]
        if len(recent) > threshold:
            server, group, resource = key
            self.violations.append(f"{group}/{resource} restarted in place on {server} after {len(recent)} failures "
                                   f"in {period_ms} ms (restart threshold {threshold})")

    # --- the log's side -------------------------------------------------------------------------------
    def record(self, r: Record, state: ClusterState) -> None:
        """`state`: the quorum log's projections with `r` applied."""
        e = r.event
        if e.type == "ResourceFailed" and e.restarts_exhausted:
            self.exhausted_at.setdefault(e.group, []).append(ts_ms(r.ts))
            self.to_fail_over.add(e.group)
        elif e.type == "GroupOnlineRequested":
            self.exhausted_at.pop(e.group, None)
            self.failed.discard(e.group)
            self.to_fail_over.discard(e.group)
        elif e.type == "GroupStateChanged" and e.state == "Failed":
            self.failed.add(e.group)
        elif e.type == "GroupDeleted":
            self.exhausted_at.pop(e.group, None)
            self.failed.discard(e.group)
            self.to_fail_over.discard(e.group)
        elif e.type == "GroupMoved" and e.to_node is not None:
            self._placed(r, e.group, state)

    def _placed(self, r: Record, group: str, state: ClusterState) -> None:
        admin = r.event.reason.startswith("admin move")
        if group in self.failed:
            if admin:
                self.failed.discard(group)
            else:
                self.violations.append(f"Failed group {group} placed on {r.event.to_node} at seq {r.seq} "
                                       f"({r.event.reason}) without an admin bringing it online")
            return
        cfg, times = state.config.groups.get(group), self.exhausted_at.get(group)
        failover = group in self.to_fail_over
        self.to_fail_over.discard(group)  # this placement acts on the exhaustion (an admin's too)
        if cfg is None or not times or admin or not failover:
            return
        newest = max(times)
        count = sum(1 for t in times if t > newest - cfg.failover.period_ms)
        if count > cfg.failover.threshold:
            self.violations.append(f"group {group} placed on {r.event.to_node} at seq {r.seq} after {count} failovers "
                                   f"in {cfg.failover.period_ms} ms (failover threshold {cfg.failover.threshold})")
