"""The supervisor's Agents page: every agent's skills, lines, languages and daily target, and a form
to change one agent's profile.

In the reader's language (core.i18n); skills, lines and language tags are codes typed in English
and marked so. The page works without JavaScript: an Edit link opens the form for that
agent, the form posts here and the page comes back saying what was saved. agent_profiles.js sends
the form to the profile API instead, updates the table in place and says the result in the page's
live status region (an error: in an alert beside the form, the field marked and focused).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from agents import profiles
from agents.profiles import Profile, ProfileError
from core.auth.models import User
from core.deps import Roles, SessionDep
from core.i18n import N_, _
from warmline.console.pages import _section, render

router = APIRouter(include_in_schema=False)
SECTION = _section("/console/agents")
SupervisorPage = Annotated[User, Depends(Roles(*SECTION.roles, page=True))]
TITLE = N_("Agents' profiles")
# What each field is called on the page (for the error beside the form).
FIELD_NAMES = {
    "skills": N_("Skills"),
    "lines": N_("Lines"),
    "languages": N_("Languages"),
    "daily_hours": N_("Daily target hours"),
    "level": N_("Level"),
}


def _url(name: str) -> str:
    return "/console/agents/" + quote(name, safe="")


def _hours(p: Profile) -> str:
    return f"{p.daily_hours:g}"


def saved_message(p: Profile) -> str:
    """What the live region says after a save (agent_profiles.js says the same)."""
    return _("Saved. {profile}.", profile=p.text())


def _page(
    request: Request,
    session: Session,
    user: User,
    *,
    editing: str | None = None,
    status: str | None = None,
    error: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    code: int = 200,
) -> HTMLResponse:
    rows = profiles.list_profiles(session)
    chosen = next((p for p in rows if p.name == editing), None)
    if editing is not None and chosen is None and status is None:
        status = _("No agent named {name}.", name=editing)
    values = form or (
        {
            "skills": ", ".join(chosen.skills),
            "lines": ", ".join(chosen.lines),
            "languages": ", ".join(chosen.languages),
            "daily_hours": _hours(chosen),
            "level": chosen.level,
        }
        if chosen is not None
        else {}
    )
    resp = render(
        request,
        "agent_profiles.html",
        _(TITLE),
        user,
        section=SECTION,
        agents=rows,
        chosen=chosen,
        action=_url(chosen.name) if chosen is not None else "",
        values=values,
        status=status,
        field_names={key: _(name) for key, name in FIELD_NAMES.items()},
        level_names={key: _(name) for key, name in profiles.LEVEL_NAMES.items()},
        error=error,
    )
    resp.status_code = code
    return resp


@router.get("/console/agents")
def agents_page(
    request: Request,
    session: SessionDep,
    user: SupervisorPage,
    agent: str | None = None,
    saved: str | None = None,
) -> HTMLResponse:
    status = None
    if agent and saved:
        try:
            status = saved_message(profiles.get_profile(session, agent))
        except ProfileError:
            status = None
    return _page(request, session, user, editing=agent or None, status=status)


@router.post("/console/agents/{name}")
def save_profile(
    request: Request,
    name: str,
    session: SessionDep,
    user: SupervisorPage,
    skills: Annotated[str, Form()] = "",
    lines: Annotated[str, Form()] = "",
    languages: Annotated[str, Form()] = "",
    daily_hours: Annotated[str, Form()] = "",
    level: Annotated[str, Form()] = "",
) -> Response:
    """The form's target without JavaScript: save, then back to the page saying what was saved."""
    form = {
        "skills": skills,
        "lines": lines,
        "languages": languages,
        "daily_hours": daily_hours,
        "level": level,
    }
    try:
        profiles.update_profile(
            session,
            name,
            actor=user.name,
            skills=profiles.split_list(skills),
            lines=profiles.split_list(lines),
            languages=profiles.split_list(languages),
            daily_hours=profiles.parse_hours(daily_hours),
            level=level or None,
        )
    except ProfileError as exc:
        session.rollback()
        field = exc.field if exc.field != "daily_target_minutes" else "daily_hours"
        field_name = _(FIELD_NAMES.get(field or "", N_("Profile")))
        problem = exc.problem.rstrip(".")
        error = {
            "field": field,
            "text": _("{field}: {problem}. Nothing was saved.", field=field_name, problem=problem),
        }
        return _page(request, session, user, editing=name, error=error, form=form, code=422)
    return RedirectResponse(f"/console/agents?agent={quote(name, safe='')}&saved=1", status_code=303)
