"""Protocol timings and limits (DESIGN §4). Every limit carries its unit in its name."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator


HEARTBEAT_GRACE_INTERVALS = 0.25  # the default grace: scheduling and delivery delay seen on a
# loaded 2-core host stays well below a quarter interval, and counting a miss that much later
# costs detection no more than the quarter-interval miss-check lag it replaces.
CLOCK_DRIFT_DEFAULT_PPM = 10_000  # 1 %: far above real quartz (< 100 ppm), room for a VM's clock
CLOCK_DRIFT_MAX_PPM_LIMIT = 100_000  # 10 %: past this a clock is broken, not drifting


class ProtocolSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    heartbeat_interval_ms: int = 1000
    heartbeat_misses_before_regroup: int = 5
    regroup_timeout_ms: int | None = None  # default: one heartbeat interval
    quorum_lease_ms: int | None = None  # default: 3 heartbeat intervals
    discovery_timeout_ms: int | None = None  # default: 2 heartbeat intervals
    join_timeout_ms: int | None = None  # default: 6 heartbeat intervals
    join_retry_after_rejection_ms: int | None = None  # default: 10 heartbeat intervals
    append_retry_ms: int | None = None  # default: 2 heartbeat intervals
    evict_lag_events: int = 1000
    evict_lag_ms: int | None = None  # default: 10 heartbeat intervals
    join_rejections_logged_per_window: int = 3
    join_rejection_window_ms: int | None = None  # default: 10 heartbeat intervals
    read_batch_max_records: int = 5000
    # A heartbeat counts as missed only once it is overdue by more than this: followers send
    # on a fixed schedule, and a timer or a message that is a little late is not a miss.
    heartbeat_grace_ms: int | None = None  # default: a quarter heartbeat interval
    # The clock-rate bound every timing rule allows for (parts per million): a node's clock
    # may run at 1 ± this against another's. Beliefs that another node has stopped (lease,
    # leader contact) are shortened by it, so they hold inside the bound.
    clock_drift_max_ppm: int | None = None  # default: CLOCK_DRIFT_DEFAULT_PPM

    @model_validator(mode="after")
    def _check(self) -> "ProtocolSettings":
        if self.heartbeat_interval_ms <= 0:
            raise ValueError("heartbeat_interval_ms must be positive")
        if self.heartbeat_misses_before_regroup < 1:
            raise ValueError("heartbeat_misses_before_regroup must be at least 1")
        if not 0 <= self.grace_ms < self.heartbeat_interval_ms:
            raise ValueError("heartbeat_grace_ms must be at least 0 and shorter than the heartbeat interval")
        if not 0 <= self.drift_ppm <= CLOCK_DRIFT_MAX_PPM_LIMIT:
            raise ValueError(f"clock_drift_max_ppm must be between 0 and {CLOCK_DRIFT_MAX_PPM_LIMIT}")
        if self.lease_belief_ms <= self.lease_ms // 2:
            raise ValueError("the grace and the drift bound leave too little of the quorum lease to trust")
        if self.lease_ms >= self.detection_ms:
            # Followers ask for the quorum after detection_ms; the old lease must be over by then.
            raise ValueError("quorum_lease_ms must be shorter than interval x misses")
        return self

    def _or(self, value: int | None, intervals: float) -> int:
        return value if value is not None else int(self.heartbeat_interval_ms * intervals)

    @property
    def interval_ms(self) -> int:
        return self.heartbeat_interval_ms

    @property
    def detection_ms(self) -> int:
        """interval x misses: how long silence lasts before a member or the leader is suspect."""
        return self.heartbeat_interval_ms * self.heartbeat_misses_before_regroup

    @property
    def regroup_ms(self) -> int:
        return self._or(self.regroup_timeout_ms, 1)

    @property
    def failover_bound_ms(self) -> int:
        """The configured detection bound: interval x misses + regroup timeout."""
        return self.detection_ms + self.regroup_ms

    @property
    def grace_ms(self) -> int:
        return self._or(self.heartbeat_grace_ms, HEARTBEAT_GRACE_INTERVALS)

    @property
    def drift_ppm(self) -> int:
        return CLOCK_DRIFT_DEFAULT_PPM if self.clock_drift_max_ppm is None else self.clock_drift_max_ppm

    def believed_ms(self, span_ms: int) -> int:
        """How long this node may trust a span another node times (a lease, a contact window):
        shortened by the drift bound both ways, so a clock running 1+e here against 1-e there
        never makes us outlast it: span x (1-e)/(1+e), rounded down."""
        e = self.drift_ppm
        return span_ms * (1_000_000 - e) // (1_000_000 + e)

    @property
    def contact_ms(self) -> int:
        """A follower runs its groups this long after a heartbeat the leader acknowledged."""
        return self.believed_ms(self.detection_ms)

    def trusted_lease_ms(self, lease_ms: int) -> int:
        """A leader trusts a quorum lease this long after the request it sent: shortened by
        the drift bound, and by the grace, so a lease timer that fires late still stops our
        groups before the Quorum can grant the lease to anyone else."""
        return self.believed_ms(lease_ms) - self.grace_ms

    @property
    def lease_belief_ms(self) -> int:
        return self.trusted_lease_ms(self.lease_ms)

    @property
    def lease_ms(self) -> int:
        return self._or(self.quorum_lease_ms, 3)

    @property
    def discovery_ms(self) -> int:
        return self._or(self.discovery_timeout_ms, 2)

    @property
    def join_ms(self) -> int:
        return self._or(self.join_timeout_ms, 6)

    @property
    def rejection_backoff_ms(self) -> int:
        return self._or(self.join_retry_after_rejection_ms, 10)

    @property
    def append_retry_after_ms(self) -> int:
        return self._or(self.append_retry_ms, 2)

    @property
    def evict_after_ms(self) -> int:
        return self._or(self.evict_lag_ms, 10)

    @property
    def rejection_window_ms(self) -> int:
        return self._or(self.join_rejection_window_ms, 10)

    def as_event_settings(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}
