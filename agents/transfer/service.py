"""The database side of transfers: what an agent may ask for, the row that keeps it, what it says.

:func:`request_transfer` checks a request in the caller's transaction and writes its row with the
step ``start`` for the call's process to take (agents.transfer.inbox); :func:`request_step` writes
``complete`` or ``cancel``. What only the call's process knows -- whether the asker is the agent on
the call now, whether an outside number may be dialled now (do-not-call, calling window; the
dialer's ``number_gate``) -- is checked there, and a refusal lands on the row as its ``result``.

Refusals here are :class:`TransferRefused` with an HTTP status, a stable code and a message in the
asker's language. Every request and step is audited; outside numbers are stored masked in
``target`` (the full one only in ``number``, for the process that dials it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from agents import routing
from agents.models import AgentProfile, SipAccount
from agents.transfer.models import Transfer
from core.audit import audit
from core.auth.models import Role, User
from core.errors import CodedError
from core.i18n import N_, _
from core.phones import mask

KINDS = ("agent", "queue", "number")
MODES = ("blind", "attended")
LIVE = ("requested", "ringing", "consulting")
STEPS = ("complete", "cancel")
CONSULT_REASON = "consult"  # the target's on_call reason while they are rung for a transfer
ACTION_EXPIRY = timedelta(seconds=15)  # a step no call's process took by then is dropped

# What each result means to the agent (the softphone says it; the API sends it as `message`).
RESULTS: dict[str, str] = {
    "answered": N_("The transfer is complete: {target} has the caller."),
    "cancelled": N_("Consultation ended; you are back with the caller."),
    "target_hangup": N_("{target} hung up; you are back with the caller."),
    "no_answer": N_("{target} did not answer."),
    "busy": N_("{target} is busy."),
    "refused": N_("{target} declined the call."),
    "no_agent": N_("Nobody in queue {target} is free now."),
    "caller_hangup": N_("The caller hung up during the transfer."),
    "not_your_call": N_("This call is not yours to transfer."),
    "not_allowed": N_("This call may not be transferred to {target}."),
    "dnc": N_("{target} is on a do-not-call list."),
    "outside_window": N_("{target} may not be called at this hour."),
    "not_taken": N_("The call ended before the transfer could start."),
    "error": N_("The transfer failed; you are still with the caller."),
}
STATES: dict[str, str] = {
    "requested": N_("Transfer to {target} asked for."),
    "ringing": N_("Calling {target}; the caller is on hold."),
    "consulting": N_("You are talking to {target}; the caller is on hold. Join or go back."),
    "queued": N_("The caller is waiting in queue {target}."),
}


class TransferRefused(CodedError):
    """A transfer request the server will not take, with its HTTP status."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.extra = extra

    def public(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


@dataclass(frozen=True)
class TransferAsk:
    """One request: the agent, their call, the target (a colleague's name, a skill, a number)."""

    agent: str
    call_ref: str
    kind: str
    target: str
    mode: str = "attended"


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at is not None else None


def describe(row: Transfer) -> str:
    """What the transfer's state says to the agent who asked (current locale)."""
    target = row.to_agent if row.kind == "queue" and row.to_agent else row.target
    if row.result is not None:
        return _(RESULTS.get(row.result, RESULTS["error"]), target=target)
    return _(STATES.get(row.state, STATES["requested"]), target=target)


def public(row: Transfer) -> dict[str, Any]:
    """A transfer as the API shows it (the outside number masked, never in full)."""
    return {
        "id": row.id,
        "call_ref": row.call_ref,
        "from_agent": row.from_agent,
        "kind": row.kind,
        "mode": row.mode,
        "target": row.target,
        "to_agent": row.to_agent,
        "state": row.state,
        "result": row.result,
        "requested_at": _iso(row.requested_at),
        "answered_at": _iso(row.answered_at),
        "ended_at": _iso(row.ended_at),
        # whose wrap-up the call is once this transfer is over (None while it is under way)
        "wrap_up_by": wrap_up_by(row),
        "message": describe(row),
    }


def wrap_up_by(row: Transfer) -> str | None:
    if row.state in LIVE:
        return None
    if row.state == "completed" and row.to_agent:
        return row.to_agent
    return row.from_agent


def _agents(session: Session) -> dict[str, tuple[str, str | None]]:
    """Every agent with a phone: name -> (endpoint, display name)."""
    rows = session.execute(
        select(User.name, SipAccount.endpoint, User.display_name)
        .join(SipAccount, SipAccount.user_id == User.id)
        .where(User.role == Role.agent, User.disabled.is_(False))
    )
    return {name: (endpoint, display) for name, endpoint, display in rows}


def _states(session: Session, now: datetime, tz: str | None) -> dict[str, routing.AgentCandidate]:
    """Each agent's routing row; one resting after a hard call (agents.help) is offered no call,
    so for transfers their state reads ``cooldown``."""
    rows = routing.candidates(session, now=now, tz=tz)
    return {c.agent: replace(c, state="cooldown") if c.cooldown_until is not None else c for c in rows}


def _skills(session: Session) -> set[str]:
    skills: set[str] = set()
    for listed in session.scalars(select(AgentProfile.skills)):
        skills.update(listed or ())
    return skills


def _clean_number(text: str) -> str:
    """Digits and a leading +; a directory name (no digits) as it is."""
    stripped = text.strip()
    if not any(ch.isdigit() for ch in stripped):
        return stripped
    return ("+" if stripped.startswith(("+", "＋")) else "") + "".join(
        str(int(ch)) for ch in stripped if ch.isdigit()
    )


def live_transfer(session: Session, call_ref: str) -> Transfer | None:
    return session.scalar(
        select(Transfer)
        .where(Transfer.call_ref == call_ref, Transfer.state.in_(LIVE))
        .order_by(Transfer.requested_at.desc())
        .limit(1)
    )


def request_transfer(session: Session, ask: TransferAsk, now: datetime, *, tz: str | None = None) -> Transfer:
    """Check and store a transfer request; the call's process starts it within a moment."""
    if ask.kind not in KINDS:
        raise TransferRefused(
            422, "invalid_kind", _("Choose a colleague, a queue or a number."), field="kind"
        )
    if ask.mode not in MODES:
        raise TransferRefused(
            422, "invalid_mode", _("A transfer is blind or attended (consult first)."), field="mode"
        )
    target = ask.target.strip()
    if not target:
        raise TransferRefused(422, "missing_target", _("Say whom to transfer the call to."), field="target")
    live = live_transfer(session, ask.call_ref)
    if live is not None:
        raise TransferRefused(
            409, "transfer_in_progress", _("A transfer of this call is under way."), transfer_id=live.id
        )
    number: str | None = None
    shown = target
    if ask.kind == "agent":
        _check_colleague(session, ask.agent, target, now, tz)
    elif ask.kind == "queue":
        _check_queue(session, ask, target, now, tz)
    else:
        number = _clean_number(target)
        if len(number) > 32:
            raise TransferRefused(422, "invalid_number", _("That number is too long."), field="target")
        shown = mask(number) if any(ch.isdigit() for ch in number) else number
    row = Transfer(
        id=f"xfer-{uuid.uuid4()}",
        call_ref=ask.call_ref,
        from_agent=ask.agent,
        kind=ask.kind,
        mode=ask.mode,
        target=shown[:100],
        number=number,
        state="requested",
        action="start",
        action_at=now,
        requested_at=now,
    )
    session.add(row)
    audit(session, ask.agent, "transfer.request", ask.call_ref, transfer=row.id, kind=ask.kind,
          mode=ask.mode, to=shown)  # fmt: skip
    session.flush()
    return row


def _check_colleague(session: Session, me: str, name: str, now: datetime, tz: str | None) -> None:
    if name == me:
        raise TransferRefused(422, "self", _("You cannot transfer a call to yourself."), field="target")
    if name not in _agents(session):
        raise TransferRefused(
            404, "unknown_agent", _("There is no agent {name} with a phone.", name=name), field="target"
        )
    row = _states(session, now, tz).get(name)
    if row is None or row.state != "available":
        state = row.state if row is not None else "logged_out"
        raise TransferRefused(
            409, "target_busy", _("{name} is not available now ({state}).", name=name, state=state),
            state=state,
        )  # fmt: skip


def _check_queue(session: Session, ask: TransferAsk, skill: str, now: datetime, tz: str | None) -> None:
    if skill not in _skills(session):
        raise TransferRefused(
            404, "unknown_queue", _("No agent has skill {skill}.", skill=skill), field="target"
        )
    if ask.mode == "attended":
        free = [
            c
            for c in _states(session, now, tz).values()
            if c.state == "available" and c.has_skill(skill) and c.agent != ask.agent
        ]
        if not free:
            raise TransferRefused(
                409, "no_agent", _("Nobody in queue {skill} is free to consult now.", skill=skill)
            )


def request_step(session: Session, agent: str, transfer_id: str, step: str, now: datetime) -> Transfer:
    """``complete`` (join the caller and the target) or ``cancel`` (go back to the caller)."""
    if step not in STEPS:
        raise TransferRefused(422, "invalid_step", _("Complete or cancel a transfer."), field="step")
    row = session.get(Transfer, transfer_id)
    if row is None or row.from_agent != agent:
        raise TransferRefused(404, "unknown_transfer", _("There is no such transfer of yours."))
    if row.state not in ("ringing", "consulting") or (step == "complete" and row.mode != "attended"):
        raise TransferRefused(
            409, "not_consulting", _("That transfer is not waiting for you now."), state=row.state
        )
    taken = session.execute(
        update(Transfer)
        .where(Transfer.id == row.id, Transfer.state.in_(("ringing", "consulting")))
        .values(action=step, action_at=now)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(taken, "rowcount", 0) or 0) != 1:
        raise TransferRefused(409, "not_consulting", _("That transfer is not waiting for you now."))
    audit(session, agent, f"transfer.{step}", row.call_ref, transfer=row.id)
    session.flush()
    session.refresh(row)
    return row


def get_transfer(session: Session, agent: str, transfer_id: str) -> Transfer:
    row = session.get(Transfer, transfer_id)
    if row is None or agent not in (row.from_agent, row.to_agent, row.rung_agent):
        raise TransferRefused(404, "unknown_transfer", _("There is no such transfer of yours."))
    return row


def transfers_of(session: Session, call_ref: str) -> list[Transfer]:
    """A call's transfers, oldest first."""
    return list(
        session.scalars(select(Transfer).where(Transfer.call_ref == call_ref).order_by(Transfer.requested_at))
    )


def holder(session: Session, call_ref: str) -> str | None:
    """The agent a call was last handed to by a completed transfer (their wrap-up), or None."""
    return session.scalar(
        select(Transfer.to_agent)
        .where(Transfer.call_ref == call_ref, Transfer.state == "completed", Transfer.to_agent.is_not(None))
        .order_by(Transfer.ended_at.desc())
        .limit(1)
    )


def targets(session: Session, agent: str, now: datetime, tz: str | None = None) -> dict[str, Any]:
    """Whom the agent may transfer to now: colleagues (available first) and the skill queues."""
    states = _states(session, now, tz)
    colleagues = []
    for name, (_endpoint, display) in sorted(_agents(session).items()):
        if name == agent:
            continue
        state = states[name].state if name in states else "logged_out"
        colleagues.append(
            {"name": name, "display_name": display or name, "state": state, "available": state == "available"}
        )
    colleagues.sort(key=lambda c: (not c["available"], c["name"]))
    queues = []
    for skill in sorted(_skills(session)):
        free = sum(
            1 for c in states.values() if c.state == "available" and c.has_skill(skill) and c.agent != agent
        )
        queues.append({"skill": skill, "available": free})
    return {"colleagues": colleagues, "queues": queues}
