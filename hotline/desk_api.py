"""The agent's desk over HTTP: a call's script and form, and saving the form's answers.

``GET /api/agents/me/calls/{call_ref}/script`` and ``PUT /api/agents/me/calls/{call_ref}/form``;
the softphone sends the ticket its INVITE carried as ``X-Warmline-Ticket``. A campaign call's
complete answers are stored on its attempt (the wrap-up may carry them too; both land in the
same `answers`), a draft in the attempt's detail; an inbound line's complete form is a case.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from core.auth.models import Role, User
from core.deps import DatabaseDep, Roles, SettingsDep
from dialer.wrapup import InvalidAnswers
from dialer.wrapup_api import MAX_ANSWER_TEXT, MAX_ANSWERS, Answer, ClockDep, answers_refusal
from hotline.cases import CaseError
from hotline.desk import DeskError, open_call, save_form, script_view

router = APIRouter(prefix="/api/agents", tags=["agents"])
AgentUser = Annotated[User, Depends(Roles(Role.agent))]
CallRef = Annotated[str, Path(min_length=1, max_length=128, description="the call's X-Warmline-Attempt")]
TicketHeader = Annotated[str | None, Header(alias="X-Warmline-Ticket", max_length=2000)]


class FormIn(BaseModel):
    answers: dict[str, Answer] = Field(default_factory=dict, description="question key -> answer")
    complete: bool = Field(
        default=True, description="the form as finished (required questions checked); false: a draft"
    )

    @field_validator("answers")
    @classmethod
    def _answers(cls, v: dict[str, Answer]) -> dict[str, Answer]:
        if len(v) > MAX_ANSWERS:
            raise ValueError(f"at most {MAX_ANSWERS} answers")
        for key, value in v.items():
            if isinstance(value, str) and len(value) > MAX_ANSWER_TEXT:
                raise ValueError(f"{key}: at most {MAX_ANSWER_TEXT} characters")
        return v


@router.get("/me/calls/{call_ref}/script")
async def call_script(
    call_ref: CallRef, user: AgentUser, db: DatabaseDep, settings: SettingsDep, now: ClockDep,
    ticket: TicketHeader = None,
) -> dict[str, Any]:  # fmt: skip
    """The call's screen pop fields, its script as safe HTML (headings h2/h3), its form and the
    answers saved so far. 403 a call that is not the agent's, 404 an unknown one."""

    def read() -> dict[str, Any]:
        with db.session() as session:
            return script_view(open_call(session, settings, call_ref, user.name, ticket, now()))

    try:
        return await asyncio.to_thread(read)
    except DeskError as exc:
        raise HTTPException(exc.status, exc.message) from exc


@router.put("/me/calls/{call_ref}/form", response_model=None)
async def put_form(
    call_ref: CallRef, body: FormIn, user: AgentUser, db: DatabaseDep, settings: SettingsDep, now: ClockDep,
    ticket: TicketHeader = None,
) -> dict[str, Any] | JSONResponse:  # fmt: skip
    """Save the call's form: 200 ``{"stored", "complete", "answers", "case_id"}``; 422 naming each
    failing question (``loc``: body, answers, key) with the answers that passed in ``kept`` (a
    campaign call keeps them as its draft); 403/404 as for the script; 409 a call without a form or
    a closed case."""

    def write() -> dict[str, Any] | InvalidAnswers:
        with db.session() as session:
            call = open_call(session, settings, call_ref, user.name, ticket, now())
            try:
                saved = save_form(session, call, dict(body.answers), complete=body.complete, now=now())
            except InvalidAnswers as exc:
                return exc  # returned, not raised: the draft of the answers that passed is committed
            return {
                "call_ref": saved.call_ref,
                "stored": saved.stored,
                "complete": saved.complete,
                "answers": saved.answers,
                "case_id": saved.case_id,
            }

    try:
        result = await asyncio.to_thread(write)
    except DeskError as exc:
        raise HTTPException(exc.status, exc.message) from exc
    except CaseError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    if isinstance(result, InvalidAnswers):
        return answers_refusal(result)
    return result
