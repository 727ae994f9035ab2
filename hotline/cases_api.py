"""Case records over HTTP, for supervisors: ``GET /api/cases[?open=true]``, ``GET /api/cases/{id}``,
``POST /api/cases/{id}/close`` (audited)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from core.auth.models import Role, User
from core.deps import Roles, SessionDep, SettingsDep
from core.settings import Settings
from dialer.wrapup_api import ClockDep
from hotline.cases import CaseError, close_case, describe, get_case, list_cases
from hotline.config import load_config
from hotline.models import Case

router = APIRouter(prefix="/api/cases", tags=["cases"])
Supervisor = Annotated[User, Depends(Roles(Role.supervisor))]


class CloseIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000, description="how it was settled")


def described(settings: Settings, cases: list[Case], today: date) -> list[dict[str, Any]]:
    """Cases as shown, each with its line's labels (the config read once)."""
    config = load_config(settings.inbound_config)
    forms = {n.name: n.form for n in config.numbers.values()}
    return [describe(c, form=forms.get(c.line), timezone=settings.timezone, today=today) for c in cases]


@router.get("")
def cases(
    _: Supervisor,
    session: SessionDep,
    settings: SettingsDep,
    now: ClockDep,
    open_only: Annotated[bool, Query(alias="open", description="only cases not yet closed")] = False,
) -> dict[str, Any]:
    """Cases, the open ones first by follow-up date."""
    today = now().astimezone(ZoneInfo(settings.timezone)).date()
    found = list_cases(session, open_only=open_only)
    return {"cases": described(settings, found, today)}


@router.get("/{case_id}")
def one_case(case_id: int, _: Supervisor, session: SessionDep, settings: SettingsDep, now: ClockDep) -> Any:
    today = now().astimezone(ZoneInfo(settings.timezone)).date()
    try:
        return described(settings, [get_case(session, case_id)], today)[0]
    except CaseError as exc:
        raise HTTPException(exc.status, str(exc)) from exc


@router.post("/{case_id}/close")
def close(
    case_id: int, body: CloseIn, user: Supervisor, session: SessionDep, settings: SettingsDep, now: ClockDep
) -> Any:
    """Close a case (audited); 409 when it is closed already, 404 when there is none."""
    try:
        case = close_case(session, case_id, actor=user.name, now=now(), note=body.note)
    except CaseError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    today = now().astimezone(ZoneInfo(settings.timezone)).date()
    return described(settings, [case], today)[0]
