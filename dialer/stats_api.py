"""Live figures of a campaign over HTTP: `GET /api/campaigns/{name}/stats` (managers, supervisors)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, status

from core.auth.models import Role, User
from core.deps import Roles, SessionDep, SettingsDep
from core.errors import http_error
from dialer import campaigns as svc
from dialer.campaigns import CampaignError
from dialer.engine.faults import campaign_faults
from dialer.stats import campaign_stats

router = APIRouter(prefix="/api", tags=["campaigns"])
WatcherUser = Annotated[User, Depends(Roles(Role.manager, Role.supervisor))]


@router.get("/campaigns/{name}/stats")
def stats(name: str, _: WatcherUser, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Dialled, answered, human/machine, confirmed, opted out, abandoned, remaining, attempts per
    hour (see dialer.stats), with attempts per outcome; `faults`: what the dialer reports degraded
    (database, bus), whether new calls are held back, outcomes waiting in its journal."""
    try:
        campaign = svc.require_campaign(session, name)
    except CampaignError as exc:
        raise http_error(status.HTTP_404_NOT_FOUND, "no_such_campaign", str(exc)) from exc
    return campaign_stats(session, campaign) | {"faults": campaign_faults(settings.var_dir)}
