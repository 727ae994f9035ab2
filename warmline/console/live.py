"""A campaign's live figures in the console: `/console/campaigns/{name}/live`.

The figures are rendered on the server (the page works without JavaScript: reload it); a small
script fetches `/api/campaigns/{name}/stats` every few seconds and updates the table. A polite
live region says how far the campaign is, and only when that sentence changes.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from core.auth.models import Role, User
from core.deps import Roles, SessionDep
from dialer import campaigns as svc
from dialer.campaigns import CampaignError
from dialer.stats import FIGURES, campaign_stats
from warmline.console.pages import _section, render

router = APIRouter(include_in_schema=False)
WatcherPage = Annotated[User, Depends(Roles(Role.manager, Role.supervisor, page=True))]

LABELS = {
    "dialled": "Calls placed",
    "answered": "Answered",
    "human": "Answered by a person",
    "machine": "Answering machines",
    "confirmed": "Confirmed",
    "opted_out": "Opted out",
    "abandoned": "Abandoned (no agent free)",
    "live": "Calls in progress",
    "remaining": "Contacts still to call",
    "contacts": "Contacts",
    "reached": "Contacts finished, reached",
    "exhausted": "Contacts out of attempts",
    "cancelled": "Contacts on do-not-call",
    "attempts_per_hour": "Calls in the last hour",
}


def progress_sentence(figures: dict[str, int]) -> str:
    done = figures["contacts"] - figures["remaining"]
    return f"{done} of {figures['contacts']} contacts finished; {figures['live']} calls in progress."


@router.get("/console/campaigns/{name}/live")
def live_page(request: Request, name: str, session: SessionDep, user: WatcherPage) -> HTMLResponse:
    try:
        campaign = svc.require_campaign(session, name)
    except CampaignError as exc:
        resp = render(
            request,
            "section.html",
            "Campaign not found",
            user,
            section=_section("/console/campaigns"),
            status=str(exc),
        )
        resp.status_code = 404
        return resp
    stats = campaign_stats(session, campaign)
    return render(
        request,
        "campaign_live.html",
        f"Live figures: {name}",
        user,
        stats=stats,
        figures=[(key, LABELS[key], stats["figures"][key]) for key in FIGURES],
        sentence=progress_sentence(stats["figures"]),
        api=f"/api/campaigns/{quote(name, safe='')}/stats",
        back=f"/console/campaigns/{quote(name, safe='')}",
    )
