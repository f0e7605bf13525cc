"""A plain, picklable latency histogram: observed in one actor, scraped through another.

The durable log is appended in the ELM and Quorum actors, while `/metrics` is served by the
Node actor's HTTP app; Ray passes this object by value, so the Node actor asks its ELM (and,
when it leads, the Quorum) for a copy at scrape time. Buckets are upper bounds in seconds,
as prometheus_client's, and counts are per bucket (made cumulative when exposed).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# Upper bounds in seconds for one durable append (write + fsync of one batch): sub-ms on a
# fast SSD, tens of ms on a loaded or network disk; past 1 s an operator has a problem.
APPEND_BUCKETS_S: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class LatencyHistogram:
    buckets_s: tuple[float, ...] = APPEND_BUCKETS_S
    counts: list[int] = field(default_factory=list)  # one per bucket, then one for +Inf
    sum_s: float = 0.0

    def __post_init__(self) -> None:
        if list(self.buckets_s) != sorted(self.buckets_s):
            raise ValueError("buckets must be increasing")
        if not self.counts:
            self.counts = [0] * (len(self.buckets_s) + 1)

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets_s, seconds)] += 1
        self.sum_s += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, cumulative count) pairs in Prometheus form, ending with +Inf."""
        out, total = [], 0
        for bound, n in zip((*map(_le, self.buckets_s), "+Inf"), self.counts):
            total += n
            out.append((bound, total))
        return out

    def copy(self) -> "LatencyHistogram":
        return LatencyHistogram(self.buckets_s, list(self.counts), self.sum_s)


def _le(bound: float) -> str:
    return repr(float(bound))
