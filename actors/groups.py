"""Which groups may run on this node: derived from the committed view and the role (S8c,
S11, S12), never remembered separately, so a role change cannot leave one running."""

from __future__ import annotations

from actors import group_runner
from actors.effects import Effect
from actors.node_state import FOLLOWING_ROLES, NodeState, Role


def desired_groups(node: NodeState, now: int) -> set[str]:
    if not node.view.membership.is_full_member(node.id):
        return set()
    if node.role == Role.LEADER:
        ok = now < node.lease_until  # the quorum lease, as we can prove it
    elif node.role in FOLLOWING_ROLES:
        ok = now < node.contact_until  # the last acked heartbeat + detection
    else:
        ok = False
    return set(node.view.membership.groups_of(node.id)) if ok else set()


def sync_groups(node: NodeState, now: int) -> list[Effect]:
    return group_runner.sync(node, now, desired_groups(node, now))


def stop_all_groups(node: NodeState, now: int) -> list[Effect]:
    return group_runner.sync(node, now, set())
