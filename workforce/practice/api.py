"""Practice calls over HTTP (answers in the asker's language; every start audited).

    GET  /api/practice/scenarios              the scenarios                      agent, supervisor, qa
    POST /api/agents/me/practice              {"scenario"}: ring my own phone    agent
    GET  /api/agents/me/practice              my practice calls (newest first),  agent
                                              each with ``audio_url`` once recorded
    GET  /api/practice?agent=NAME             practice calls (everyone's, or one) supervisor, qa
    POST /api/practice                        {"agent", "scenario"}: ring theirs  supervisor
    POST /api/practice/{id}/review            put it up for scoring (QA queue)   supervisor, qa

Refusals: 404 (no such agent, scenario or practice call; no SIP account), 422 (bad input),
502 (Asterisk refused). A practice call rings only the agent's own SIP endpoint (workforce.practice).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from agents.help.api import AriDep
from core.auth.models import Role, User
from core.deps import DatabaseDep, Roles, SettingsDep
from core.deps import now as request_now
from core.errors import http_error
from core.i18n import _
from recordings.qa.practice import put_up_practice
from recordings.qa.reviews import ReviewError
from workforce.practice import service
from workforce.practice.service import PracticeError, Started

agent_router = APIRouter(prefix="/api/agents", tags=["practice"])
router = APIRouter(prefix="/api/practice", tags=["practice"])
AgentUser = Annotated[User, Depends(Roles(Role.agent))]
AnyTrainee = Annotated[User, Depends(Roles(Role.agent, Role.supervisor, Role.qa))]
Trainer = Annotated[User, Depends(Roles(Role.supervisor, Role.qa))]
SupervisorUser = Annotated[User, Depends(Roles(Role.supervisor))]
NowDep = Annotated[datetime, Depends(request_now)]
ScenarioName = Annotated[str, Field(min_length=1, max_length=64, examples=["confused_elder"])]


class PracticeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scenario: ScenarioName


class PracticeFor(PracticeIn):
    agent: str = Field(min_length=1, max_length=64)


def _refuse(exc: PracticeError) -> Exception:
    field = "scenario" if exc.code == "no_such_scenario" else None
    return http_error(exc.status, exc.code, exc.message, **({"field": field} if field else {}))


def _answer(started: Started) -> dict[str, Any]:
    return {
        "id": started.id,
        "agent": started.agent,
        "scenario": started.scenario,
        "state": "ringing",
        "channel_id": started.channel_id,
        "message": _("Your phone is ringing: answer to start the practice call. No citizen is on it."),
    }


@router.get("/scenarios")
def practice_scenarios(_user: AnyTrainee) -> list[dict[str, Any]]:
    return service.scenario_list()


@agent_router.post("/me/practice", status_code=status.HTTP_202_ACCEPTED)
async def practise(
    body: PracticeIn, user: AgentUser, db: DatabaseDep, settings: SettingsDep, aris: AriDep, now: NowDep
) -> dict[str, Any]:
    """Ring my own phone with a simulated caller (the scenario); recorded as practice."""
    try:
        started = await service.start(db, settings, aris, user.name, body.scenario, actor=user.name, now=now)
    except PracticeError as exc:
        raise _refuse(exc) from exc
    return _answer(started)


@agent_router.get("/me/practice")
async def my_practice(user: AgentUser, db: DatabaseDep, now: NowDep) -> list[dict[str, Any]]:
    """My practice calls, newest first; a recorded one plays at its ``audio_url``."""
    calls: list[dict[str, Any]] = await db.in_thread(lambda s: service.practice_calls(s, now, user.name))
    return calls


@router.get("")
async def practice_list(
    _user: Trainer, db: DatabaseDep, now: NowDep, agent: str | None = None
) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = await db.in_thread(lambda s: service.practice_calls(s, now, agent))
    return calls


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def practice_for(
    body: PracticeFor, user: SupervisorUser, db: DatabaseDep, settings: SettingsDep, aris: AriDep, now: NowDep
) -> dict[str, Any]:
    """A supervisor rings an agent's phone with a practice scenario (the agent answers it)."""
    try:
        started = await service.start(db, settings, aris, body.agent, body.scenario, actor=user.name, now=now)
    except PracticeError as exc:
        raise _refuse(exc) from exc
    return _answer(started)


@router.post("/{practice_id}/review", status_code=status.HTTP_201_CREATED)
async def put_up(practice_id: int, user: Trainer, db: DatabaseDep) -> dict[str, Any]:
    """Put a recorded practice call into the QA queue: scored with the scorecards, kept apart."""

    def work(session: Session) -> dict[str, Any]:
        row = service.get_call(session, practice_id)
        if row.state != "done" or row.recording_id is None:
            raise PracticeError(
                "not_recorded", _("practice call {id} has no recording yet", id=practice_id), 409
            )
        item = put_up_practice(session, row.recording_id, scenario=row.scenario, actor=user.name)
        return {"practice_id": practice_id, "item_id": item.id, "recording_id": row.recording_id}

    try:
        answer: dict[str, Any] = await db.in_thread(work)
    except PracticeError as exc:
        raise _refuse(exc) from exc
    except ReviewError as exc:
        raise http_error(exc.status, exc.code, str(exc)) from exc
    return answer
