"""What an admin decision is, and the small helpers every admin command shares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from actors import messages as m
from actors.effects import Effect
from events import types as ev
from events.record import Draft, draft
from projections.state import ClusterState

NAME_MAX_CHARS = 64
NAME_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_MAX_CHARS - 1}}}$")
StopProof = Callable[[str, str, int, ClusterState], bool]


@dataclass(frozen=True)
class Decision:
    drafts: tuple[Draft, ...] = ()
    effects: tuple[Effect, ...] = ()
    moves: dict[str, str] = field(default_factory=dict)  # group -> target, once its owner stopped it
    reply: m.AdminReply | None = None  # answered now: an error, or accepted without an append


@dataclass(frozen=True)
class Context:
    view: ClusterState
    leader: str
    stopped: StopProof


def release(group: str, reason: str, by: str) -> Draft:
    """The first step of every move off a live owner: the group goes Offline there."""
    return draft(ev.GroupStateChanged(group=group, state="Offline", reason=reason), by=by)


def accept(drafts: list[Draft], effects: list[Effect] = (), moves: dict[str, str] | None = None) -> Decision:
    return Decision(tuple(drafts), tuple(effects), moves or {})


def err(msg: m.AdminCommand, status: int, error: str, detail: str) -> Decision:
    return Decision(reply=m.AdminReply(request_id=msg.request_id, ok=False, status=status, error=error, detail=detail))


def name_arg(msg: m.AdminCommand, key: str) -> str | Decision:
    value = msg.args.get(key)
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        return err(msg, 422, "invalid_argument",
                    f"'{key}' must be a name of 1-{NAME_MAX_CHARS} letters, digits, '_', '.', '-'")
    return value
