"""The supervisor's welfare-alerts page: unresolved alerts first, acknowledged and resolved by
keyboard with plain forms (no script needed); alerts.js polls for new ones and announces them in
the page's live status region."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.auth.models import Role, User
from core.deps import Roles, SessionDep
from core.i18n import N_, _
from dialer.welfare import service
from dialer.welfare.events import announce_change
from dialer.welfare.models import Alert, AlertState
from warmline.console.pages import _section, render

router = APIRouter(include_in_schema=False)
SECTION = _section("/console/alerts")
PageUser = Annotated[User, Depends(Roles(*SECTION.roles, page=True))]
SupervisorPage = Annotated[User, Depends(Roles(Role.supervisor, page=True))]


def _page(
    request: Request, session: SessionDep, user: User, *, status: str | None = None, error: str | None = None,
    error_id: int | None = None, code: int = 200,
) -> HTMLResponse:  # fmt: skip
    unresolved = service.list_alerts(session, states=[AlertState.open, AlertState.acknowledged])
    resolved = service.list_alerts(session, states=[AlertState.resolved], limit=20)
    latest = max((a.id for a in unresolved + resolved), default=0)
    counts = service.counts(session)
    rows = [_row(a) for a in unresolved]
    done = [_row(a) for a in resolved]
    resp = render(
        request, "alerts.html", _("Welfare alerts"), user, section=SECTION, alerts=rows, resolved=done,
        counts=counts, latest=latest, can_act=user.role in (Role.supervisor, Role.admin),
        status=status or _("{open} open, {acknowledged} acknowledged.", **counts),
        error=error, error_id=error_id, state_name=service.state_name,
    )  # fmt: skip
    resp.status_code = code
    return resp


def _row(alert: Alert) -> dict[str, Any]:
    summary = {"summary": service.summary_text(alert), "spoken": service.summary_text(alert, spoken=True)}
    return service.describe(alert) | summary


# What the page says after an action (?done=acknowledged&alert=3): said in the reader's language.
DONE = {"acknowledged": N_("Alert {id} acknowledged."), "resolved": N_("Alert {id} resolved.")}


@router.get("/console/alerts")
def alerts_page(
    request: Request,
    session: SessionDep,
    user: PageUser,
    done: str | None = None,
    alert: int | None = None,
) -> HTMLResponse:
    status = _(DONE[done], id=alert) if done in DONE and alert is not None else None
    return _page(request, session, user, status=status)


@router.post("/console/alerts/{alert_id}/acknowledge")
def acknowledge(
    alert_id: int, request: Request, session: SessionDep, user: SupervisorPage, after: BackgroundTasks
) -> Response:
    try:
        service.acknowledge(session, alert_id, actor=user.name)
    except (service.AlertError, service.AlertNotFound) as exc:
        return _page(request, session, user, error=str(exc), error_id=alert_id, code=409)
    _announce_after(after, request, alert_id, user.name)
    return RedirectResponse(f"/console/alerts?done=acknowledged&alert={alert_id}", status_code=303)


@router.post("/console/alerts/{alert_id}/resolve")
def resolve(
    alert_id: int,
    request: Request,
    session: SessionDep,
    user: SupervisorPage,
    after: BackgroundTasks,
    resolution: Annotated[str, Form()] = "",
) -> Response:
    try:
        service.resolve(session, alert_id, actor=user.name, resolution=resolution)
    except (service.AlertError, service.AlertNotFound) as exc:
        return _page(request, session, user, error=str(exc), error_id=alert_id, code=422)
    _announce_after(after, request, alert_id, user.name)
    return RedirectResponse(f"/console/alerts?done=resolved&alert={alert_id}", status_code=303)


def _announce_after(after: BackgroundTasks, request: Request, alert_id: int, by: str) -> None:
    """The change is stored with this request; the bus hears of it once the request has committed."""
    state = request.app.state
    after.add_task(announce_change, getattr(state, "bus", None), state.db, alert_id, by=by)
