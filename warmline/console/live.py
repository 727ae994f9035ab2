"""A campaign's live figures in the console: `/console/campaigns/{name}/live`.

The figures are rendered on the server (the page works without JavaScript: reload it); a small
script fetches `/api/campaigns/{name}/stats` every few seconds and updates the table. A polite
live region says how far the campaign is, and only when that sentence changes. A progressive or
predictive campaign also shows its pacer (abandon rate in the window, occupancy, agent wait) with
the pacer's reason in a second polite live region ("放缓拨号：放弃率 2.7%，上限 3%").
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from core.auth.models import Role, User
from core.deps import Roles, SessionDep, SettingsDep
from core.i18n import N_, _
from dialer import campaigns as svc
from dialer.campaigns import CampaignError
from dialer.engine.faults import campaign_faults
from dialer.stats import FIGURES, PACING_LABELS, PACING_ORDER, campaign_stats
from warmline.console.campaigns import status_name
from warmline.console.pages import _section, render

router = APIRouter(include_in_schema=False)
WatcherPage = Annotated[User, Depends(Roles(Role.manager, Role.supervisor, page=True))]

LABELS = {
    "dialled": N_("Calls placed"),
    "answered": N_("Answered"),
    "human": N_("Answered by a person"),
    "machine": N_("Answering machines"),
    "confirmed": N_("Confirmed"),
    "opted_out": N_("Opted out"),
    "abandoned": N_("Abandoned (no agent free)"),
    "live": N_("Calls in progress"),
    "remaining": N_("Contacts still to call"),
    "contacts": N_("Contacts"),
    "reached": N_("Contacts finished, reached"),
    "exhausted": N_("Contacts out of attempts"),
    "cancelled": N_("Contacts on do-not-call"),
    "attempts_per_hour": N_("Calls in the last hour"),
}


def progress_sentence(figures: dict[str, int]) -> str:
    """How far the campaign is (campaign_live.js says the same)."""
    done = figures["contacts"] - figures["remaining"]
    return _(
        "{done} of {contacts} contacts finished; {live} calls in progress.",
        done=done,
        contacts=figures["contacts"],
        live=figures["live"],
    )


def fault_notice(faults: dict[str, Any]) -> str:
    """What a supervisor must know of the dialer's faults (campaign_live.js says the same); empty
    when nothing is degraded."""
    parts = []
    if "database" in faults.get("degraded", []):
        parts.append(
            _(
                "The database is unreachable: no new call is started, calls in progress go on and "
                "their outcomes are kept until it is back ({n} waiting).",
                n=faults.get("journal_pending", 0),
            )
        )
    if "bus" in faults.get("degraded", []):
        parts.append(_("The event bus is unreachable: events are kept and sent when it is back."))
    if "ari_slow" in faults.get("degraded", []):
        ari = faults.get("ari") or {}
        parts.append(
            _(
                "Asterisk is answering slowly ({ms} ms): new calls are slowed down, at most {window} "
                "started at once ({held} held back so far).",
                ms=ari.get("ms", 0),
                window=ari.get("window", 0),
                held=ari.get("held_back", 0),
            )
        )
    return " ".join(parts)


@router.get("/console/campaigns/{name}/live")
def live_page(
    request: Request, name: str, session: SessionDep, settings: SettingsDep, user: WatcherPage
) -> HTMLResponse:
    try:
        campaign = svc.require_campaign(session, name)
    except CampaignError as exc:
        resp = render(
            request,
            "section.html",
            _("Campaign not found"),
            user,
            section=_section("/console/campaigns"),
            status=str(exc),
        )
        resp.status_code = 404
        return resp
    stats = campaign_stats(session, campaign)
    faults = campaign_faults(settings.var_dir)
    return render(
        request,
        "campaign_live.html",
        _("Live figures: {name}", name=name),
        user,
        stats=stats,
        figures=[(key, _(LABELS[key]), stats["figures"][key]) for key in FIGURES],
        pacing=[(key, _(PACING_LABELS[key]), stats["pacing"]["shown"][key]) for key in PACING_ORDER]
        if stats["pacing"]
        else None,
        status_name=status_name,
        sentence=progress_sentence(stats["figures"]),
        notice=fault_notice(faults),
        api=f"/api/campaigns/{quote(name, safe='')}/stats",
        back=f"/console/campaigns/{quote(name, safe='')}",
    )
