"""The simulated network: delay, jitter, loss, duplication, reordering and partitions.

Addresses belong to servers: `node:x` and `elm:x` live on server `x`, `quorum` on server
`quorum`. Messages between two actors on one server never cross the network.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

BASE_DELAY_MS = 1


def server_of(addr: str) -> str:
    return addr.split(":", 1)[1] if ":" in addr else addr


@dataclass
class NetworkConditions:
    jitter_ms: int = 1
    loss: float = 0.0  # probability a message is dropped
    dup: float = 0.0  # probability a message is delivered twice
    blocked: set[tuple[str, str]] = field(default_factory=set)  # (from server, to server) pairs cut

    def healthy(self) -> bool:
        return self.loss == 0 and self.dup == 0 and not self.blocked


class SimNetwork:
    def __init__(self, rng: random.Random, conditions: NetworkConditions | None = None) -> None:
        self.rng = rng
        self.cond = conditions or NetworkConditions()
        self.sent = 0
        self.dropped = 0

    def deliveries(self, src: str, dst: str) -> list[int]:
        """The delays (ms) after which copies of one message arrive: [] when it is lost."""
        self.sent += 1
        a, b = server_of(src), server_of(dst)
        if a == b:
            return [0]
        if (a, b) in self.cond.blocked or self.rng.random() < self.cond.loss:
            self.dropped += 1
            return []
        copies = 2 if self.rng.random() < self.cond.dup else 1
        return [BASE_DELAY_MS + self.rng.randint(0, max(self.cond.jitter_ms, 0)) for _ in range(copies)]

    def partition(self, side_a: set[str], side_b: set[str], *, one_way: bool = False) -> None:
        for a in side_a:
            for b in side_b:
                self.cond.blocked.add((a, b))
                if not one_way:
                    self.cond.blocked.add((b, a))

    def heal(self) -> None:
        self.cond.blocked.clear()
        self.cond.loss = 0.0
        self.cond.dup = 0.0
