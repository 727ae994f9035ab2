"""The reports page: per line, the team or each agent, by day or week; a chart (SVG) with the table
of every figure beside it for screen readers, and the same as CSV; below, the team table (per agent:
calls, talk time, satisfaction, rests). Supervisors and managers."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from core.auth.models import User
from core.db import utcnow
from core.deps import Roles, SessionDep, SettingsDep
from core.formats import duration
from core.i18n import _
from hotline.config import load_config
from warmline.console.pages import _section, render
from workforce.payroll import rules_from
from workforce.reports import ReportError, report, team_table

router = APIRouter(include_in_schema=False)
SECTION = _section("/console/reports")
PageUser = Annotated[User, Depends(Roles(*SECTION.roles, page=True))]
BAR_W = 300  # the chart's bar length at 100%


def _pct(share: float | None) -> str:
    return "—" if share is None else format(share, ".0%")


def _bars(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per row, the SVG bars of service level and resolution (lengths at BAR_W per 100%)."""
    out = []
    for i, row in enumerate(rows):
        sl, res = row["service_level"], row["resolution"]
        out.append(
            {
                "y": 30 + i * 44,
                "label": f"{row['name']} {row['period']}",
                "sl": round((sl or 0) * BAR_W),
                "res": round((res or 0) * BAR_W),
                "sl_text": _pct(sl),
                "res_text": _pct(res),
            }
        )
    return out


@router.get("/console/reports")
def reports_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: PageUser,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
    by: Literal["day", "week"] = "day",
    group: Literal["line", "team", "agent"] = "line",
) -> HTMLResponse:
    config = load_config(settings.inbound_config)
    today = utcnow().astimezone(ZoneInfo(config.timezone)).date()
    last = last or today
    first = first or last - timedelta(days=6)
    error, rows, team, code = None, [], [], 200
    try:
        data = report(
            session, config, first, last, by=by, group=group, rules=rules_from(settings), now=utcnow()
        )
        rows = data["rows"]
        team = [{**a, "talk_text": duration(a["talk_s"])} for a in team_table(session, config, first, last)]
    except ReportError as exc:
        error, code = str(exc), 422
    query = urlencode({"from": first.isoformat(), "to": last.isoformat(), "by": by, "group": group})
    shown = [
        {
            **r,
            "sl_text": _pct(r["service_level"]),
            "abandon_text": _pct(r["abandon"]),
            "res_text": _pct(r["resolution"]),
            "sl_target": _pct(r["targets"]["service_level"]) if r["targets"]["service_level"] else "—",
        }
        for r in rows
    ]
    status = error or _("{count} rows from {first} to {last}.", count=len(rows), first=first, last=last)
    resp = render(
        request, "reports.html", _("Reports"), user, section=SECTION, rows=shown, bars=_bars(rows),
        first=first.isoformat(), last=last.isoformat(), by=by, group=group, error=error,
        csv_url=f"/api/workforce/reports?{query}&format=csv", status=status, bar_w=BAR_W,
        chart_h=40 + 44 * len(rows), team=team,
    )  # fmt: skip
    resp.status_code = code
    return resp
