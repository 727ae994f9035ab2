"""Welfare alerts for supervisors: list, acknowledge, resolve (JSON API).

A change is stored by the request that makes it; its bus event goes out after the response, once
the request's transaction has committed (``announce_change``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from core.auth.models import Role, User
from core.deps import Roles, SessionDep
from core.errors import http_error
from dialer.welfare import service
from dialer.welfare.events import announce_change
from dialer.welfare.models import AlertState

router = APIRouter(prefix="/api/welfare", tags=["welfare"])
Viewer = Annotated[User, Depends(Roles(Role.supervisor, Role.manager))]
Supervisor = Annotated[User, Depends(Roles(Role.supervisor))]

StateFilter = Literal["open", "acknowledged", "resolved", "unresolved", "all"]
FILTERS: dict[str, list[AlertState] | None] = {
    "open": [AlertState.open],
    "acknowledged": [AlertState.acknowledged],
    "resolved": [AlertState.resolved],
    "unresolved": [AlertState.open, AlertState.acknowledged],
    "all": None,
}


class AckRequest(BaseModel):
    note: str | None = Field(default=None, max_length=service.MAX_NOTE)


class ResolveRequest(BaseModel):
    resolution: str = Field(min_length=1, max_length=service.MAX_NOTE)


def _one(session: Any, alert_id: int) -> dict[str, Any]:
    return service.describe(service.get_alert(session, alert_id))


def _not_found(exc: service.AlertNotFound) -> HTTPException:
    return http_error(status.HTTP_404_NOT_FOUND, exc.code, str(exc))


def _announce_after(request: Request, after: BackgroundTasks, alert_id: int, by: str) -> None:
    # Background tasks run after the response, and the session commits before it is sent.
    state = request.app.state
    after.add_task(announce_change, getattr(state, "bus", None), state.db, alert_id, by=by)


@router.get("/alerts")
def list_alerts(
    session: SessionDep,
    _user: Viewer,
    state: StateFilter = "unresolved",
    since_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Alerts, newest first (``since_id``: only those raised after that one, for polling)."""
    alerts = service.list_alerts(session, states=FILTERS[state], since_id=since_id, limit=min(limit, 1000))
    return {
        "alerts": [
            service.describe(a)
            | {"summary": service.summary_text(a), "spoken": service.summary_text(a, spoken=True)}
            for a in alerts
        ],
        "counts": service.counts(session),
    }


@router.get("/alerts/{alert_id}")
def get_alert(alert_id: int, session: SessionDep, _user: Viewer) -> dict[str, Any]:
    try:
        return _one(session, alert_id)
    except service.AlertNotFound as exc:
        raise _not_found(exc) from exc


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(
    alert_id: int,
    session: SessionDep,
    user: Supervisor,
    request: Request,
    after: BackgroundTasks,
    body: AckRequest | None = None,
) -> dict[str, Any]:
    try:
        alert = service.acknowledge(session, alert_id, actor=user.name, note=body.note if body else None)
    except service.AlertNotFound as exc:
        raise _not_found(exc) from exc
    except service.AlertError as exc:
        raise http_error(status.HTTP_409_CONFLICT, exc.code, exc.message) from exc
    _announce_after(request, after, alert_id, user.name)
    return service.describe(alert)


@router.post("/alerts/{alert_id}/resolve")
def resolve(
    alert_id: int,
    body: ResolveRequest,
    session: SessionDep,
    user: Supervisor,
    request: Request,
    after: BackgroundTasks,
) -> dict[str, Any]:
    try:
        alert = service.resolve(session, alert_id, actor=user.name, resolution=body.resolution)
    except service.AlertNotFound as exc:
        raise _not_found(exc) from exc
    except service.AlertError as exc:
        code = (
            status.HTTP_409_CONFLICT
            if exc.code == "already_resolved"
            else status.HTTP_422_UNPROCESSABLE_CONTENT
        )
        raise http_error(code, exc.code, exc.message) from exc
    _announce_after(request, after, alert_id, user.name)
    return service.describe(alert)
