"""The console: server-rendered, accessible pages. Sign-in sets an HttpOnly cookie with a token.

Every page speaks the request's language (core.deps sets it: the user's choice, else the browser's)
and says so in `<html lang>`; titles are translated here, the rest in the templates.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.audit import audit
from core.auth import service
from core.auth.models import ROLE_NAMES, Role, User
from core.deps import (
    LANG_COOKIE,
    TOKEN_COOKIE,
    DatabaseDep,
    Public,
    Roles,
    SessionDep,
    SettingsDep,
    bearer_token,
)
from core.i18n import LANGUAGE_NAMES, _, normalise
from warmline.console.nav import SECTIONS, Section, section_at, sections_for
from warmline.console.templating import make_templates
from warmline.health import check_health

templates = make_templates()
templates.env.globals.update(
    role_name=lambda role: ROLE_NAMES.get(role, str(role)),
    language_name=lambda tag: LANGUAGE_NAMES[normalise(tag)],
)
router = APIRouter(include_in_schema=False)
PageUser = Annotated[User, Depends(Roles(*Role, page=True))]
LANG_COOKIE_DAYS = 365


def render(request: Request, name: str, title: str, user: User | None, **ctx: Any) -> HTMLResponse:
    sections = sections_for(user.role) if user else []
    context = {
        "title": title,
        "user": user,
        "sections": sections,
        "current": request.url.path,
        "tz": request.app.state.settings.timezone,
        **ctx,
    }
    return templates.TemplateResponse(request, name, context)


def remember_language(resp: Response, language: str | None) -> None:
    """This browser shows the sign-in page in the language its user chose (none: the browser's)."""
    if language:
        resp.set_cookie(LANG_COOKIE, language, max_age=LANG_COOKIE_DAYS * 86400, samesite="strict")
    else:
        resp.delete_cookie(LANG_COOKIE)


@router.get("/", dependencies=[Depends(Public())])
def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=303)


@router.get("/login", dependencies=[Depends(Public())])
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", _("Sign in"), None)


@router.post("/login", dependencies=[Depends(Public())])
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    user = service.authenticate(session, username, password)
    if user is None:
        audit(session, username[:64] or "-", "login.fail", via="console")
        error = _("Sign-in failed: wrong user name or password.")
        page = render(request, "login.html", _("Sign in"), None, error=error, username=username)
        page.status_code = 401
        return page
    ttl = timedelta(hours=settings.token_ttl_hours)
    token = service.issue_token(session, user, ttl=ttl, label="console")
    resp = RedirectResponse("/console", status_code=303)
    resp.set_cookie(
        TOKEN_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    remember_language(resp, user.language)
    return resp


@router.post("/logout", dependencies=[Depends(Public())])
def logout(request: Request, session: SessionDep) -> RedirectResponse:
    token = bearer_token(request)
    if token:
        service.revoke_token(session, token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(TOKEN_COOKIE)
    return resp


@router.get("/console")
def home(request: Request, user: PageUser) -> HTMLResponse:
    return render(request, "home.html", _("Home"), user, status=_("Signed in as {name}.", name=user.name))


_section = section_at


def _allowed(section: Section) -> Roles:
    return Roles(*section.roles, page=True)


@router.get("/console/system")
async def system(
    request: Request,
    settings: SettingsDep,
    db: DatabaseDep,
    user: Annotated[User, Depends(_allowed(_section("/console/system")))],
) -> HTMLResponse:
    from core.db import utcnow

    health = await check_health(settings, db)
    checks = [(_("Database"), health.database), (_("Event bus"), health.bus)]
    checks += [(_("Asterisk {name}", name=name), c) for name, c in health.asterisk.items()]
    return render(
        request,
        "system.html",
        _("System"),
        user,
        section=_section("/console/system"),
        checks=checks,
        checked=utcnow(),
    )


@router.get("/console/users")
def users(
    request: Request,
    session: SessionDep,
    user: Annotated[User, Depends(_allowed(_section("/console/users")))],
) -> HTMLResponse:
    return render(
        request,
        "users.html",
        _("Users"),
        user,
        section=_section("/console/users"),
        users=service.list_users(session),
    )


def _placeholder(section: Section) -> None:
    """Pages later features fill; each admits only its section's roles."""

    guard = Depends(_allowed(section))

    # A default, not an annotation: string annotations cannot see this closure's `section`.
    def page(request: Request, user: User = guard) -> HTMLResponse:
        return render(request, "section.html", _(section.title), user, section=section)

    router.add_api_route(section.path, page, methods=["GET"], name=f"console:{section.title}")


# Sections with real pages (here or in a feature's console module); the rest are placeholders.
BUILT = {
    "/console",
    "/console/system",
    "/console/users",
    "/console/campaigns",
    "/console/my-day",
    "/console/wallboard",
    "/console/agents",
    "/console/alerts",
    "/console/cases",
    "/console/reviews",
    "/console/my-reviews",
    "/console/settings",
}
for _s in SECTIONS:
    if _s.path not in BUILT:
        _placeholder(_s)
