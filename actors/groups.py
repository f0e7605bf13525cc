"""Which groups may run on this node: derived from the committed view and the role (S8c,
S11, S12), never remembered separately, so a role change cannot leave one running."""

from __future__ import annotations

from actors import group_runner
from actors.effects import Effect
from actors.node_state import FOLLOWING_ROLES, NodeState, Role


def run_until(node: NodeState) -> int:
    """Until when groups may run here: the quorum lease (leader) or the last acked
    heartbeat + detection (follower, and a follower taking over: it keeps that proof while
    it catches up, since the old leader moves our groups only after that much silence);
    0 in every other role."""
    if node.role == Role.LEADER:
        return node.lease_until
    if node.role in FOLLOWING_ROLES or node.role == Role.TAKING_OVER:
        return node.contact_until
    return 0


def desired_groups(node: NodeState, now: int) -> set[str]:
    return _desired(node, now, run_until(node))


def _desired(node: NodeState, now: int, until: int) -> set[str]:
    if node.leaving or now >= until or not node.view.membership.is_full_member(node.id):
        return set()
    return {g.name for g in node.view.membership.groups.values() if g.owner == node.id}


def sync_groups(node: NodeState, now: int) -> list[Effect]:
    until = run_until(node)  # (once per step: every step ends here)
    return group_runner.sync(node, now, _desired(node, now, until), until)


def stop_all_groups(node: NodeState, now: int) -> list[Effect]:
    return group_runner.sync(node, now, set(), run_until(node))
