"""Workforce API: the payroll export (``GET /api/workforce/payroll``, CSV or XLSX, audited) and the
shifts agents pick and managers publish (``/api/workforce/shifts``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from core.audit import audit
from core.auth.models import Role, User
from core.db import utcnow
from core.deps import Roles, SessionDep, SettingsDep
from core.deps import now as request_now
from core.downloads import attachment
from core.errors import http_error
from core.i18n import _
from hotline.config import InboundConfig, InboundConfigError, load_config
from ivr.models import CallSurvey
from recordings.at_rest import open_voice_message
from recordings.storage import CHUNK
from workforce.breaks import breaks, team_breaks
from workforce.forecast import parse_week
from workforce.my_day import my_day
from workforce.payroll import Period, export, payroll, rules_from
from workforce.reports import ReportError, report, to_csv
from workforce.shifts import ShiftError, drop, monday_of, pick, publish, rota
from workforce.surveys import survey_row, surveys_between

router = APIRouter(prefix="/api/workforce", tags=["workforce"])
agent_router = APIRouter(prefix="/api/agents", tags=["workforce"])
SupervisorUser = Annotated[User, Depends(Roles(Role.supervisor))]
AgentUser = Annotated[User, Depends(Roles(Role.agent))]
ReportUser = Annotated[User, Depends(Roles(Role.supervisor, Role.manager))]
RotaUser = Annotated[User, Depends(Roles(Role.agent, Role.supervisor, Role.manager))]
PlannerUser = Annotated[User, Depends(Roles(Role.supervisor, Role.manager))]
Now = Annotated[datetime, Depends(request_now)]  # the app's clock (tests inject one)
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


# Beyond these a period is a typing mistake (and dates near year 1 or 9999 overflow the clock).
MAX_PERIOD_DAYS = 400
EARLIEST, LATEST = date(2000, 1, 1), date(2199, 12, 31)


@router.get("/payroll")
def payroll_export(
    user: SupervisorUser,
    session: SessionDep,
    settings: SettingsDep,
    first: Annotated[date, Query(alias="from")],
    last: Annotated[date, Query(alias="to")],
    agent: str | None = None,
    fmt: Annotated[Literal["csv", "xlsx"], Query(alias="format")] = "csv",
) -> Response:
    """Per agent: shifts, calls, talk, worked, normal, night and overtime hours for the period."""
    if last < first:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            _("--to {last} is before --from {first}", last=last, first=first),
        )
    if (last - first).days >= MAX_PERIOD_DAYS or not (first >= EARLIEST and last <= LATEST):
        raise http_error(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "bad_period",
            _(
                "a payroll period is at most {days} days between {earliest} and {latest}",
                days=MAX_PERIOD_DAYS,
                earliest=EARLIEST,
                latest=LATEST,
            ),
        )
    try:
        rules = rules_from(settings)
    except ValueError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from exc
    period = Period(first, last)
    rows = payroll(session, period, rules, now=utcnow(), agent=agent)
    body = export(session, user.name, rows, period, fmt)
    name = f"payroll-{first.isoformat()}-{last.isoformat()}.{fmt}"
    return Response(body, media_type=MEDIA[fmt], headers=attachment(name))


# ---------------------------------------------------------------- shifts


class ShiftRequest(BaseModel):
    line: str = Field(min_length=1, max_length=64)
    start: str = Field(min_length=1, max_length=40, description="2026-12-14T09:00, local")
    agent: str | None = Field(default=None, max_length=64, description="supervisors only; else you")


class PublishRequest(BaseModel):
    line: str = Field(min_length=1, max_length=64)
    week: str = Field(min_length=1, max_length=10, description="2026-W50")


def inbound(settings: SettingsDep) -> InboundConfig:
    try:
        return load_config(settings.inbound_config)
    except InboundConfigError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from exc


def _week(text: str | None, config: InboundConfig, now: datetime) -> date:
    if text is None:
        return monday_of(now.astimezone(ZoneInfo(config.timezone)).date())
    try:
        return parse_week(text)
    except ValueError as exc:
        raise http_error(status.HTTP_422_UNPROCESSABLE_CONTENT, "bad_week", str(exc)) from exc


def _shift_error(exc: ShiftError) -> HTTPException:
    return http_error(exc.status, "shift_refused", str(exc))


def _is_planner(user: User) -> bool:
    return user.role in (Role.supervisor, Role.manager, Role.admin)


@router.get("/shifts")
def shifts_show(
    user: RotaUser, session: SessionDep, settings: SettingsDep, clock: Now, line: str, week: str | None = None
) -> dict[str, Any]:
    """The line's week by the hour: needed (from the forecast), picked, open; published or not.
    Agents see how many picked each hour and which are theirs; planners see who."""
    config = inbound(settings)
    try:
        found = rota(session, config, line, _week(week, config, clock))
    except ShiftError as exc:
        raise _shift_error(exc) from exc
    planner = _is_planner(user)
    return found.as_dict(viewer=None if planner else user.name, names=planner)


def _target(user: User, body: ShiftRequest) -> str:
    if body.agent is None or body.agent == user.name:
        return user.name
    if not _is_planner(user):
        raise http_error(
            status.HTTP_403_FORBIDDEN, "not_yours", _("agents pick and drop their own shifts only")
        )
    return body.agent


@router.post("/shifts/pick")
def shifts_pick(
    user: RotaUser, session: SessionDep, settings: SettingsDep, clock: Now, body: ShiftRequest
) -> dict[str, Any]:
    """Take an open hour (for yourself; a supervisor may name an agent)."""
    agent = _target(user, body)
    try:
        hour = pick(session, inbound(settings), body.line, agent, body.start, actor=user.name, now=clock)
    except ShiftError as exc:
        raise _shift_error(exc) from exc
    return {"agent": agent, "line": body.line, **hour.as_dict(viewer=agent, names=False)}


@router.post("/shifts/drop")
def shifts_drop(
    user: RotaUser, session: SessionDep, settings: SettingsDep, clock: Now, body: ShiftRequest
) -> dict[str, Any]:
    """Give an hour back; after the week is published only a supervisor or manager can."""
    agent = _target(user, body)
    try:
        drop(
            session, inbound(settings), body.line, agent, body.start,
            actor=user.name, now=clock, supervisor=_is_planner(user),
        )  # fmt: skip
    except ShiftError as exc:
        raise _shift_error(exc) from exc
    return {"agent": agent, "line": body.line, "start": body.start, "dropped": True}


@router.post("/shifts/publish")
def shifts_publish(
    user: PlannerUser, session: SessionDep, settings: SettingsDep, clock: Now, body: PublishRequest
) -> dict[str, Any]:
    """Publish the line's week: the rota is final (agents may still fill its gaps)."""
    try:
        config = inbound(settings)
        found = publish(
            session, config, body.line, _week(body.week, config, clock), actor=user.name, now=clock
        )
    except ShiftError as exc:
        raise _shift_error(exc) from exc
    return found.as_dict()


# ---------------------------------------------------------------- my day


@router.get("/my-day")
def my_day_view(user: AgentUser, session: SessionDep, settings: SettingsDep, clock: Now) -> dict[str, Any]:
    """Your current shift-day: hours by shift, night hours, calls, talk time, the daily target's
    progress and the overtime warning; `spoken` says it aloud (the softphone's My day, Alt+W)."""
    try:
        rules = rules_from(settings)
    except ValueError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from exc
    warn_before = timedelta(minutes=settings.hours_warn_before_minutes)
    praise = settings.survey_compliment_score
    allowance = settings.break_allowance_minutes
    return my_day(
        session, user.name, rules, warn_before, clock, compliment_score=praise, break_allowance_min=allowance
    ).as_dict()


@agent_router.get("/me/breaks")
def my_breaks(user: AgentUser, session: SessionDep, settings: SettingsDep, clock: Now) -> dict[str, Any]:
    """Your breaks in the current shift: minutes taken, the allowance, what remains, by reason code."""
    try:
        rules = rules_from(settings)
    except ValueError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from exc
    return breaks(session, user.name, rules, settings.break_allowance_minutes, clock).as_dict()


@router.get("/breaks")
def breaks_view(
    user: SupervisorUser, session: SessionDep, settings: SettingsDep, clock: Now
) -> dict[str, Any]:
    """Each agent's break minutes in their current shift against the allowance, and who is over
    (the wallboard's Breaks column)."""
    try:
        rules = rules_from(settings)
    except ValueError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from exc
    found = team_breaks(session, rules, settings.break_allowance_minutes, clock)
    return {"allowance_min": round(settings.break_allowance_minutes), "agents": [b.as_dict() for b in found]}


# ---------------------------------------------------------------- reports


@router.get("/reports", response_model=None)
def reports_view(
    user: ReportUser,
    session: SessionDep,
    settings: SettingsDep,
    clock: Now,
    first: Annotated[date, Query(alias="from")],
    last: Annotated[date, Query(alias="to")],
    by: Literal["day", "week"] = "day",
    group: Literal["line", "team", "agent"] = "line",
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> dict[str, Any] | Response:
    """Per line, the team or agent, by day or week: service level, answer time, abandon, handle
    time, resolution, satisfaction, hours, against each line's targets (JSON or CSV)."""
    try:
        rules = rules_from(settings)
        data = report(session, inbound(settings), first, last, by=by, group=group, rules=rules, now=clock)
    except ReportError as exc:
        raise http_error(status.HTTP_422_UNPROCESSABLE_CONTENT, "bad_period", str(exc)) from exc
    if fmt == "csv":
        name = f"report-{group}-{by}-{first.isoformat()}-{last.isoformat()}.csv"
        return Response(to_csv(data), media_type=MEDIA["csv"], headers=attachment(name))
    return data


# ---------------------------------------------------------------- survey comments

ReviewerUser = Annotated[User, Depends(Roles(Role.qa, Role.supervisor))]


@router.get("/surveys")
def surveys_view(
    user: ReviewerUser,
    session: SessionDep,
    first: Annotated[date, Query(alias="from")],
    last: Annotated[date, Query(alias="to")],
) -> dict[str, Any]:
    """The post-call survey scores of a period (UTC days), newest first, each with its recorded
    comment's address when the caller left one (supervisors and QA)."""
    if last < first or (last - first).days > MAX_PERIOD_DAYS:
        raise http_error(status.HTTP_422_UNPROCESSABLE_CONTENT, "bad_period", _("the period is not valid"))
    return {"surveys": [survey_row(row) for row in surveys_between(session, first, last)]}


@router.get("/surveys/{survey_id}/comment")
def survey_comment(
    survey_id: int, session: SessionDep, settings: SettingsDep, user: ReviewerUser
) -> StreamingResponse:
    """A caller's recorded comment (decrypted as it streams; each play audited)."""
    row = session.get(CallSurvey, survey_id)
    if row is None or not row.comment_recording:
        raise http_error(status.HTTP_404_NOT_FOUND, "no_comment", _("no recorded comment for this survey"))
    try:
        audio = open_voice_message(settings, row.comment_recording)
    except FileNotFoundError as exc:
        raise http_error(status.HTTP_410_GONE, "purged", _("the recorded comment is no longer kept")) from exc
    audit(session, user.name, "survey.comment.play", str(row.id), call_ref=row.call_ref, role=user.role.value)

    def body() -> Iterator[bytes]:
        with audio:
            yield from iter(lambda: audio.read(CHUNK), b"")

    return StreamingResponse(body(), media_type="audio/wav", headers={"Cache-Control": "no-store"})
