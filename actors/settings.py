"""Protocol timings and limits (DESIGN §4). Every limit carries its unit in its name."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator


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

    @model_validator(mode="after")
    def _check(self) -> "ProtocolSettings":
        if self.heartbeat_interval_ms <= 0:
            raise ValueError("heartbeat_interval_ms must be positive")
        if self.heartbeat_misses_before_regroup < 1:
            raise ValueError("heartbeat_misses_before_regroup must be at least 1")
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
