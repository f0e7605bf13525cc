"""A counter as a `ray_actor` resource: one live copy in the cluster, found by name.

    import ray
    ray.init(address="auto", namespace="roster")
    counter = ray.get_actor("web/counter", namespace="roster")
    ray.get(counter.incr.remote())

Its count lives in memory: after a failover it starts again from `start` (keep durable
state elsewhere — a file, a database — if it must survive the move).
"""

from __future__ import annotations

import os


class Counter:
    def __init__(self, start: int = 0) -> None:
        self.count = start

    def incr(self, by: int = 1) -> int:
        self.count += by
        return self.count

    def get(self) -> int:
        return self.count

    def where(self) -> dict:
        import ray  # only ever called inside a Ray actor

        return {"pid": os.getpid(), "ray_node": ray.get_runtime_context().get_node_id()}

    def ping(self) -> str:
        return "pong"
