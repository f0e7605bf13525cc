"""Upcasters: read a record of an older schema version as the current model.

`UPCASTERS[(type, v)]` turns the `data` of version v into version v + 1. A record is
upcast step by step until it reaches `CURRENT_VERSION[type]`, so a log written by any
released version replays on this one.
"""

from __future__ import annotations

from typing import Any, Callable

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def register(type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def deco(fn: Upcaster) -> Upcaster:
        UPCASTERS[(type_name, from_version)] = fn
        return fn

    return deco


def upcast(type_name: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
    from events.types import CURRENT_VERSION

    current = CURRENT_VERSION[type_name]
    if version > current:
        raise ValueError(f"{type_name} v{version} is newer than this build (v{current})")
    while version < current:
        step = UPCASTERS.get((type_name, version))
        if step is None:
            raise ValueError(f"no upcaster for {type_name} v{version}")
        data = step(data)
        version += 1
    return data
