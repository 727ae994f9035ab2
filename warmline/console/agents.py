"""Console pages about agents: the agent's own day, and the supervisor's live wallboard."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from agents.ledger import spoken_duration, state_name
from agents.states import hours_report
from core.auth.models import Role, User
from core.db import utcnow
from core.deps import Roles, SessionDep, SettingsDep
from core.i18n import _
from warmline.console.nav import section_at
from warmline.console.pages import render

router = APIRouter(include_in_schema=False)
AgentPage = Annotated[User, Depends(Roles(Role.agent, page=True))]
SupervisorPage = Annotated[User, Depends(Roles(Role.supervisor, page=True))]


@router.get("/console/my-day")
def my_day(request: Request, user: AgentPage, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    report = hours_report(session, user.name, utcnow(), ZoneInfo(settings.timezone))
    rows = [
        (_("Logged in"), report.today.logged_in_s, report.week.logged_in_s),
        (_("Talking"), report.today.talking_s, report.week.talking_s),
        (_("Wrap-up"), report.today.wrap_up_s, report.week.wrap_up_s),
        (_("Break"), report.today.break_s, report.week.break_s),
    ]
    table = [(label, spoken_duration(day), spoken_duration(week)) for label, day, week in rows]
    return render(
        request,
        "my_day.html",
        _("My day"),
        user,
        section=section_at("/console/my-day"),
        report=report,
        state=state_name(report.state),
        table=table,
        status=report.spoken,
    )


@router.get("/console/wallboard")
def wallboard_page(request: Request, user: SupervisorPage) -> HTMLResponse:
    return render(request, "wallboard.html", _("Wallboard"), user, section=section_at("/console/wallboard"))
