"""The supervisors' case page (工单): the hotline's cases until closed, the follow-up due first,
closed by keyboard with a plain form (no script needed); the close is audited."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.auth.models import User
from core.db import utcnow
from core.deps import Roles, SessionDep, SettingsDep
from core.i18n import _, name_of
from hotline.call_transfers import inbound_transfers
from hotline.cases import CaseError, close_case, list_cases
from hotline.cases_api import described
from warmline.console.campaigns import TRANSFER_KIND_NAMES, transfer_text
from warmline.console.pages import _section, render

router = APIRouter(include_in_schema=False)
SECTION = _section("/console/cases")
PageUser = Annotated[User, Depends(Roles(*SECTION.roles, page=True))]


def _page(
    request: Request, session: SessionDep, settings: SettingsDep, user: User, *,
    status: str | None = None, error: str | None = None, error_id: int | None = None, code: int = 200,
) -> HTMLResponse:  # fmt: skip
    today = utcnow().astimezone(ZoneInfo(settings.timezone)).date()
    open_cases = described(settings, list_cases(session, open_only=True), today)
    closed = [c for c in described(settings, list_cases(session, limit=50), today) if c["closed_at"]][:20]
    handed_on = [
        {**vars(t), "kind_name": name_of(TRANSFER_KIND_NAMES, t.kind), "what": transfer_text(vars(t))}
        for t in inbound_transfers(session)
    ]
    resp = render(
        request, "cases.html", _("Cases"), user, section=SECTION, cases=open_cases, closed=closed,
        status=status or _("{n} open cases.", n=len(open_cases)), error=error, error_id=error_id,
        handed_on=handed_on,
    )  # fmt: skip
    resp.status_code = code
    return resp


@router.get("/console/cases")
def cases_page(
    request: Request, session: SessionDep, settings: SettingsDep, user: PageUser, done: str | None = None
) -> HTMLResponse:
    return _page(request, session, settings, user, status=done)


@router.post("/console/cases/{case_id}/close")
def close(
    case_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: PageUser,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        close_case(session, case_id, actor=user.name, now=utcnow(), note=note)
    except CaseError as exc:
        return _page(request, session, settings, user, error=str(exc), error_id=case_id, code=exc.status)
    message = _("Case {id} closed.", id=case_id)
    return RedirectResponse(f"/console/cases?done={quote(message)}", status_code=303)
