"""Which groups may run on this node: derived from the committed view and the role (S8c,
S11, S12), never remembered separately, so a role change cannot leave one running."""

from __future__ import annotations

from actors.effects import Effect, StartGroup, StopGroup
from actors.node_state import FOLLOWING_ROLES, NodeState, Role


def desired_groups(node: NodeState, now: int) -> set[str]:
    if not node.view.membership.is_full_member(node.id):
        return set()
    if node.role == Role.LEADER:
        ok = now < node.lease_until  # the quorum lease, as we can prove it
    elif node.role in FOLLOWING_ROLES or node.role == Role.TAKING_OVER:
        # The last acked heartbeat + detection; a follower taking over keeps that proof while
        # it catches up (the old leader moves our groups only after that much silence).
        ok = now < node.contact_until
    else:
        ok = False
    return set(node.view.membership.groups_of(node.id)) if ok else set()


def sync_groups(node: NodeState, now: int) -> list[Effect]:
    want = desired_groups(node, now)
    out: list[Effect] = [StopGroup(g) for g in sorted(node.running - want)]
    out += [StartGroup(g) for g in sorted(want - node.running)]
    node.running = want
    return out


def stop_all_groups(node: NodeState) -> list[Effect]:
    stops: list[Effect] = [StopGroup(g) for g in sorted(node.running)]
    node.running = set()
    return stops
