"""Where a resource group should run: a pure function of the committed view."""

from __future__ import annotations

from projections.config_db import GroupConfig
from projections.membership import MembershipView


def place(group: GroupConfig, view: MembershipView, load: dict[str, int], exclude: frozenset[str] = frozenset()) -> str | None:
    """First preferred owner that is Online (S12: never a Paused node), else the Online node
    with the fewest groups (ties by id); None when no node can take it."""
    online = {n.id for n in view.nodes.values() if n.state == "Online" and n.id not in exclude}
    for owner in group.preferred_owners:
        if owner in online:
            return owner
    if not online:
        return None
    return min(sorted(online), key=lambda n: load.get(n, 0))


def load_of(view: MembershipView) -> dict[str, int]:
    load: dict[str, int] = {}
    for g in view.groups.values():
        if g.owner is not None:
            load[g.owner] = load.get(g.owner, 0) + 1
    return load


def better_preferred(group: GroupConfig, owner: str, view: MembershipView) -> str | None:
    """For failback: a preferred owner ranked above the current owner that is Online now."""
    ranked = list(group.preferred_owners)
    limit = ranked.index(owner) if owner in ranked else len(ranked)
    for candidate in ranked[:limit]:
        n = view.nodes.get(candidate)
        if n is not None and n.state == "Online":
            return candidate
    return None
