"""Supervisors download the payroll export: ``GET /api/workforce/payroll`` (CSV or XLSX, audited)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from core.auth.models import Role, User
from core.db import utcnow
from core.deps import Roles, SessionDep, SettingsDep
from core.i18n import _
from workforce.payroll import Period, export, payroll, rules_from

router = APIRouter(prefix="/api/workforce", tags=["workforce"])
SupervisorUser = Annotated[User, Depends(Roles(Role.supervisor))]
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


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
    try:
        rules = rules_from(settings)
    except ValueError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from exc
    period = Period(first, last)
    rows = payroll(session, period, rules, now=utcnow(), agent=agent)
    body = export(session, user.name, rows, period, fmt)
    name = f"payroll-{first.isoformat()}-{last.isoformat()}.{fmt}"
    return Response(
        body, media_type=MEDIA[fmt], headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
