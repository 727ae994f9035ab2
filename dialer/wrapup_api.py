"""The agent's wrap-up over HTTP: ``POST /api/agents/me/wrapup`` and the campaign's choices.

The wrap-up is stored on the attempt and acted on in the request that carries it; the ``wrapup``
CallEvent on the bus follows the commit and is never the only record. It lives in the dialer (not
in ``agents``) because what it stores and does -- attempts, contacts, do-not-call, welfare alerts --
is the dialer's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from core.auth.models import Role, User
from core.bus import Bus
from core.db import utcnow
from core.deps import DatabaseDep, Roles, SessionDep
from core.errors import http_error
from core.i18n import _
from core.messages import CallEvent
from dialer import campaigns as svc
from dialer.dispositions import DEFAULT_DISPOSITIONS, Disposition
from dialer.welfare import events as welfare_events
from dialer.wrapup import (
    InvalidAnswers,
    WrapUpError,
    WrapUpRequest,
    WrapUpResult,
    keep_draft,
    record_wrapup,
)

router = APIRouter(prefix="/api/agents", tags=["agents"])
AgentUser = Annotated[User, Depends(Roles(Role.agent))]

MAX_ANSWERS = 100
MAX_ANSWER_TEXT = 2000
Answer = str | int | float | bool | None


def clock() -> Callable[[], datetime]:
    """What time it is for a wrap-up (tests override this dependency with their own clock)."""
    return utcnow


ClockDep = Annotated[Callable[[], datetime], Depends(clock)]


class WrapUpIn(BaseModel):
    call_ref: str = Field(min_length=1, max_length=128, description="the call's attempt id")
    disposition: str = Field(min_length=1, max_length=32, description="a code of the campaign's dispositions")
    note: str | None = Field(default=None, max_length=2000)
    callback_at: datetime | None = Field(
        default=None, description="for a callback: when; without a zone, the callee's local time"
    )
    answers: dict[str, Answer] = Field(default_factory=dict, description="form answers by question key")
    talk_seconds: int = Field(default=0, ge=0, le=24 * 3600)

    @field_validator("answers")
    @classmethod
    def _answers(cls, v: dict[str, Answer]) -> dict[str, Answer]:
        if len(v) > MAX_ANSWERS:
            raise ValueError(_("At most {n} answers.", n=MAX_ANSWERS))
        for key, value in v.items():
            if not key.strip() or len(key) > 64:
                raise ValueError(_("'{key}': a question key is 1-64 characters.", key=key))
            if isinstance(value, str) and len(value) > MAX_ANSWER_TEXT:
                raise ValueError(_("'{key}': at most {n} characters.", key=key, n=MAX_ANSWER_TEXT))
        return v


def answers_refusal(exc: InvalidAnswers) -> JSONResponse:
    """422 naming every failing question (`loc`: body, answers, key), with the answers kept."""
    detail = [
        {"loc": ["body", "answers", key], "msg": msg, "type": "value_error", "question": key}
        for key, msg in exc.errors.items()
    ]
    return JSONResponse(
        {"detail": detail, "kept": exc.kept}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


def _refusal(exc: WrapUpError) -> HTTPException:
    """A 422 as FastAPI words its own validation errors (so a client reads one shape), with the
    code beside; 403 (``not_your_call``), 404 (``unknown_call``) and 409 (``already_wrapped_up``)
    as ``{"code", "message", "field"}``. The message is in the agent's language."""
    if exc.status == status.HTTP_422_UNPROCESSABLE_CONTENT:
        detail: Any = [
            {
                "loc": ["body", exc.field or "body"],
                "msg": exc.message,
                "type": "value_error",
                "code": exc.code,
            }
        ]
        return HTTPException(exc.status, detail)
    return http_error(exc.status, exc.code, exc.message, field=exc.field)


@router.post("/me/wrapup", response_model=None)
async def post_wrapup(
    body: WrapUpIn, user: AgentUser, request: Request, db: DatabaseDep, now: ClockDep
) -> dict[str, Any] | JSONResponse:
    """Store the agent's wrap-up of a call on its attempt and act on it; then publish it.

    200 with what was done (``already: true`` for a repeat of the same wrap-up); 403 for a call
    another agent took; 404 for an unknown call; 409 for a different wrap-up of a call already
    wrapped up; 422 naming the field for bad input -- for form answers that fail the campaign's
    form, one entry per question (``loc``: body, answers, key) and the answers that passed,
    ``kept`` as the call's draft."""
    wrapup = WrapUpRequest(
        call_ref=body.call_ref,
        agent=user.name,
        disposition=body.disposition,
        note=body.note,
        answers=body.answers,
        callback_at=body.callback_at,
        talk_seconds=body.talk_seconds,
    )

    def keep() -> WrapUpResult:
        with db.session() as session:
            return record_wrapup(session, wrapup, now())

    def draft(kept: dict[str, Any]) -> None:
        with db.session() as session:
            keep_draft(session, body.call_ref, user.name, kept, now())

    try:
        result = await asyncio.to_thread(keep)
    except InvalidAnswers as exc:
        await asyncio.to_thread(draft, exc.kept)
        return answers_refusal(exc)
    except WrapUpError as exc:
        raise _refusal(exc) from exc
    if result.alert_id is not None and not result.already:
        welfare_events.wake()  # committed: the supervisors hear of it now
    answer = result.public()
    answer["published"] = await _publish(request, result) if not result.already else False
    return answer


async def _publish(request: Request, result: WrapUpResult) -> bool:
    """The `wrapup` CallEvent, after the commit; the note and answers stay in the database."""
    bus: Bus | None = getattr(request.app.state, "bus", None)
    if bus is None:
        return False
    event = CallEvent(
        call_id=result.call_ref,
        campaign=result.campaign,
        kind="wrapup",
        detail={
            "agent": result.agent,
            "disposition": result.disposition,
            "action": result.action,
            "callback_at": result.callback_at.isoformat() if result.callback_at else None,
            "callback_moved": result.moved,
            "contact_id": result.contact_id,
        },
    )
    with contextlib.suppress(Exception):  # stored already: a bus that is down loses nothing
        async with asyncio.timeout(2.0):
            return await bus.publish(event)
    return False


class DispositionOut(BaseModel):
    key: str  # the softphone's number key
    code: str
    label: str
    label_en: str
    action: str


def _keyed(items: list[Disposition] | tuple[Disposition, ...]) -> list[DispositionOut]:
    return [
        DispositionOut(key=str(n), code=d.code, label=d.label, label_en=d.label_en, action=d.action.value)
        for n, d in enumerate(items, start=1)
    ]


@router.get("/me/dispositions")
def my_dispositions(
    _user: AgentUser,
    session: SessionDep,
    campaign: Annotated[str | None, Query(max_length=64, description="the call's campaign")] = None,
) -> dict[str, Any]:
    """The wrap-up choices for a call of `campaign` (without one: the defaults), key 1 first."""
    if campaign is None:
        return {"campaign": None, "dispositions": _keyed(DEFAULT_DISPOSITIONS)}
    found = svc.get_campaign(session, campaign)
    if found is None:
        raise http_error(
            status.HTTP_404_NOT_FOUND,
            "unknown_campaign",
            _("There is no campaign named '{name}'.", name=campaign),
        )
    return {"campaign": found.name, "dispositions": _keyed(found.spec.dispositions)}
