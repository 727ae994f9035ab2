"""Supervisors download the payroll export: ``GET /api/workforce/payroll`` (CSV or XLSX, audited)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from core.auth.models import Role, User
from core.db import utcnow
from core.deps import Roles, SessionDep, SettingsDep
from core.downloads import attachment
from core.errors import http_error
from core.i18n import _
from workforce.payroll import Period, export, payroll, rules_from

router = APIRouter(prefix="/api/workforce", tags=["workforce"])
SupervisorUser = Annotated[User, Depends(Roles(Role.supervisor))]
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
