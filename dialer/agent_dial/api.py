"""Agents placing calls over HTTP (role agent; answers in the client's ``Accept-Language``).

    GET  /api/agents/me/preview          the next contact, reserved to me for a while
    POST /api/agents/me/preview/skip     {"contact_id", "reason", "note"?}: pass it over
    GET  /api/agents/me/callbacks        the callbacks kept for me, soonest first
    POST /api/agents/me/dial             {"contact_id"} or {"number", "campaign"}: my phone rings first
    GET  /api/agents/me/calls            my recent calls: call_ref, contact_id, campaign, started_at, wrapped_up

A refusal is ``{"detail": {"code", "message", …}}`` with 403 (not mine to call, not allowed), 404
(unknown contact or campaign), 409 (do-not-call, outside the calling window with ``opens_at``,
the call limit with ``allowed_at``, a callback not yet due with ``due_at``, a call already being
placed, on a call, the contact closed or being called) or 422 (bad input, with ``field``). What is
asked for is stored (and audited) in the request; the dial is placed by a dialer worker.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from core.auth.models import Role, User
from core.db import Database
from core.deps import DatabaseDep, Roles, SettingsDep
from core.i18n import _
from dialer.agent_dial import service
from dialer.agent_dial.service import DialRefused, DialTarget
from dialer.wrapup_api import ClockDep

router = APIRouter(prefix="/api/agents", tags=["agents"])  # Roles sets the request's language
AgentUser = Annotated[User, Depends(Roles(Role.agent))]
T = TypeVar("T")


class SkipIn(BaseModel):
    contact_id: int
    reason: str = Field(min_length=1, max_length=32, description=f"one of {', '.join(service.SKIP_REASONS)}")
    note: str | None = Field(default=None, max_length=500)


class DialIn(BaseModel):
    contact_id: int | None = Field(default=None, description="a contact shown to me, or my callback")
    number: str | None = Field(default=None, max_length=64, description="a typed number (manual dial)")
    campaign: str | None = Field(default=None, max_length=64, description="the campaign of a typed number")

    @model_validator(mode="after")
    def _one_target(self) -> DialIn:
        if (self.contact_id is None) == (self.number is None):
            raise ValueError("give contact_id, or number and campaign")
        if self.number is not None and not self.campaign:
            raise ValueError("a typed number needs its campaign")
        return self


async def _in_session(db: Database, work: Callable[[Session], T]) -> T:
    """Run `work` in a transaction in a worker thread (the locale goes with it); a refusal is the
    HTTP answer, and nothing of the refused request is kept."""

    try:
        return await db.in_thread(work)
    except DialRefused as exc:
        raise HTTPException(exc.status, exc.public()) from exc


@router.get("/me/preview")
async def my_preview(
    user: AgentUser, db: DatabaseDep, settings: SettingsDep, now: ClockDep
) -> dict[str, Any]:
    """The contact reserved to me now: the one I hold, else the next due one I may take."""
    hold = timedelta(seconds=settings.preview_hold_seconds)

    def work(session: Session) -> dict[str, Any]:
        desk = service.desk_of(session, user.name)
        found = service.next_preview(session, desk, now(), hold=hold, tz=settings.timezone)
        if found is None:
            return {
                "contact": None,
                "message": _("Nobody is due to be called in your preview campaigns now."),
            }
        return {"contact": found.public(), "message": _("Contact reserved to you until you call or skip it.")}

    return await _in_session(db, work)


@router.post("/me/preview/skip")
async def skip_preview(body: SkipIn, user: AgentUser, db: DatabaseDep, now: ClockDep) -> dict[str, Any]:
    """Pass over the contact shown to me, with a reason (kept and audited)."""

    def work(session: Session) -> dict[str, Any]:
        desk = service.desk_of(session, user.name)
        contact = service.skip_preview(session, desk, body.contact_id, body.reason, body.note, now())
        return {
            "skipped": True,
            "contact_id": contact.id,
            "reason": body.reason,
            "message": _("Skipped; this contact will not be shown to you again today."),
        }

    return await _in_session(db, work)


@router.get("/me/callbacks")
async def my_callbacks(user: AgentUser, db: DatabaseDep, now: ClockDep) -> list[dict[str, Any]]:
    """The callbacks I promised that are still kept for me, soonest first (``due`` once due)."""

    def work(session: Session) -> list[dict[str, Any]]:
        return [item.public() for item in service.my_callbacks(session, user.name, now())]

    return await _in_session(db, work)


@router.post("/me/dial", status_code=status.HTTP_202_ACCEPTED)
async def dial(
    body: DialIn, user: AgentUser, db: DatabaseDep, settings: SettingsDep, now: ClockDep
) -> dict[str, Any]:
    """Place a call: the attempt is stored now, and a dialer rings my phone, then the far end."""
    target = DialTarget(body.contact_id, body.number, body.campaign)

    def work(session: Session) -> dict[str, Any]:
        desk = service.desk_of(session, user.name)
        return service.request_dial(session, desk, target, now(), region=settings.default_region).public()

    placed = await _in_session(db, work)
    service.note_asked()  # committed: a dialer worker in this process takes it at its next pass
    return placed


@router.get("/me/calls")
async def my_calls(user: AgentUser, db: DatabaseDep) -> list[dict[str, Any]]:
    """My recent calls, newest first: ``call_ref``, ``contact_id``, ``campaign``, ``started_at``,
    ``wrapped_up``."""

    def work(session: Session) -> list[dict[str, Any]]:
        return service.my_calls(session, user.name)

    return await _in_session(db, work)
