"""What a resource is (the config-DB side of a resource group): pure pydantic models.

A group holds ordered resources. Each resource has a type (`process`, `ray_actor`), that
type's parameters, `depends_on` (same group: start in dependency order, stop in reverse),
a health check, a restart policy and start/stop timeouts. A group has a failover policy.

Defaults follow Windows Server 2003 server clusters (WSFC), documented in
`docs/resources.md`:
- RestartThreshold 3 per RestartPeriod 900 s, restart delay 500 ms;
- FailoverThreshold 10 per FailoverPeriod 6 h; past it the group is Failed and stays
  offline until an admin brings it online or moves it;
- PendingTimeout 180 s for a start; a stop waits `stop_timeout_ms` after SIGTERM before
  SIGKILL (10 s here: WSFC's 180 s is long for a process that ignores SIGTERM);
- LooksAlive every 5 s (here: `health.interval_ms`), with `health.timeout_ms` per probe.

This module is the contract between the cores (which decide) and the shells (which run
resources): no I/O here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RESOURCE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

DEFAULT_HEALTH_INTERVAL_MS = 5_000
DEFAULT_HEALTH_TIMEOUT_MS = 2_000
DEFAULT_RESTART_THRESHOLD = 3
DEFAULT_RESTART_PERIOD_MS = 900_000
DEFAULT_RESTART_DELAY_MS = 500
DEFAULT_START_TIMEOUT_MS = 180_000
DEFAULT_STOP_TIMEOUT_MS = 10_000
DEFAULT_FAILOVER_THRESHOLD = 10
DEFAULT_FAILOVER_PERIOD_MS = 6 * 3600 * 1000


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HealthCheck(_Frozen):
    interval_ms: int = Field(DEFAULT_HEALTH_INTERVAL_MS, gt=0)
    timeout_ms: int = Field(DEFAULT_HEALTH_TIMEOUT_MS, gt=0)


class RestartPolicy(_Frozen):
    """Restart in place up to `threshold` times per `period_ms` (after `delay_ms`); one
    failure more in the period fails the group over (WSFC RestartThreshold/RestartPeriod)."""

    threshold: int = Field(DEFAULT_RESTART_THRESHOLD, ge=0)
    period_ms: int = Field(DEFAULT_RESTART_PERIOD_MS, gt=0)
    delay_ms: int = Field(DEFAULT_RESTART_DELAY_MS, ge=0)


class FailoverPolicy(_Frozen):
    """At most `threshold` failovers per `period_ms`; past it the group is Failed
    (WSFC FailoverThreshold/FailoverPeriod)."""

    threshold: int = Field(DEFAULT_FAILOVER_THRESHOLD, ge=0)
    period_ms: int = Field(DEFAULT_FAILOVER_PERIOD_MS, gt=0)


class ResourceSpec(_Frozen):
    """One resource of a group. `params` is validated by its type's model
    (`actors.resource_types`), so the config DB holds only specs a shell can run."""

    name: str = Field(pattern=RESOURCE_NAME_PATTERN)
    type: str
    params: dict[str, Any] = Field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    health: HealthCheck = HealthCheck()
    restart: RestartPolicy = RestartPolicy()
    start_timeout_ms: int = Field(DEFAULT_START_TIMEOUT_MS, gt=0)
    stop_timeout_ms: int = Field(DEFAULT_STOP_TIMEOUT_MS, gt=0)
