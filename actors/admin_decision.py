"""What an admin decision is, and the small helpers every admin command shares."""

from __future__ import annotations

import re
from dataclasses import dataclass
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
    reply: m.AdminReply | None = None  # answered now: an error (nothing appended)
    status: int = 200  # the answer once the drafts commit (202: accepted, finishes later)
    detail: str | None = None


@dataclass(frozen=True)
class Context:
    view: ClusterState
    leader: str
    stopped: StopProof


def release(group: str, reason: str, by: str, moving_to: str | None = None) -> Draft:
    """The first step of every move off a live owner: the group goes Offline there. A move's
    target is in the event (durable: a new leader finishes the move, issue 13)."""
    return draft(ev.GroupStateChanged(group=group, state="Offline", reason=reason, moving_to=moving_to), by=by)


def accept(drafts: list[Draft], effects: list[Effect] = ()) -> Decision:
    return Decision(tuple(drafts), tuple(effects))


def unchanged(msg: m.AdminCommand, view: ClusterState, detail: str) -> Decision:
    """Done already: the cluster is as the command wants it (an idempotent no-op, nothing appended)."""
    return Decision(reply=m.AdminReply(request_id=msg.request_id, ok=True, seq=view.seq, detail=detail, unchanged=True))


def err(msg: m.AdminCommand, status: int, error: str, detail: str) -> Decision:
    return Decision(reply=m.AdminReply(request_id=msg.request_id, ok=False, status=status, error=error, detail=detail))


def name_arg(msg: m.AdminCommand, key: str) -> str | Decision:
    value = msg.args.get(key)
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        return err(msg, 422, "invalid_argument",
                    f"'{key}' must be a name of 1-{NAME_MAX_CHARS} letters, digits, '_', '.', '-'")
    return value
