"""The console: server-rendered, accessible pages. Sign-in sets an HttpOnly cookie with a token.

Every page speaks the request's language (core.deps sets it: the user's choice, else the browser's)
and says so in `<html lang>`; titles are translated here, the rest in the templates.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.auth import service, sessions
from core.auth.models import ROLE_NAMES, Role, User
from core.auth.signin import SignInRefused, SignInTry, session_policy, sign_in
from core.csrf import CSRF_COOKIE
from core.deps import (
    LANG_COOKIE,
    TOKEN_COOKIE,
    DatabaseDep,
    Public,
    Roles,
    SessionDep,
    SettingsDep,
    bearer_token,
    client_address,
    cookie_secure,
    now,
    set_session_cookies,
)
from core.i18n import LANGUAGE_NAMES, _, normalise
from warmline.console.nav import SECTIONS, Section, section_at, sections_for
from warmline.console.templating import make_templates
from warmline.health import Check, check_health

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


def remember_language(request: Request, resp: Response, language: str | None) -> None:
    """This browser shows the sign-in page in the language its user chose (none: the browser's)."""
    if language:
        resp.set_cookie(
            LANG_COOKIE,
            language,
            max_age=LANG_COOKIE_DAYS * 86400,
            samesite="strict",
            secure=cookie_secure(request),
        )
    else:
        resp.delete_cookie(LANG_COOKIE, samesite="strict", secure=cookie_secure(request))


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
    """Sign in: a console session (core.auth.sessions) in an HttpOnly cookie, its CSRF token in a
    cookie the pages read. Throttled like the API's sign-in (core.auth.signin)."""
    attempt = SignInTry(username, password, client_address(request), via="console")
    try:
        user = sign_in(session, attempt, now(request), settings)
    except SignInRefused as exc:
        error = exc.message if exc.status != 401 else _("Sign-in failed: wrong user name or password.")
        page = render(request, "login.html", _("Sign in"), None, error=error, username=username[:64])
        page.status_code = exc.status
        if exc.retry_after is not None:
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    started = sessions.start(session, user, now(request), session_policy(settings))
    resp = RedirectResponse("/console", status_code=303)
    max_age = int((started.expires_at - now(request)).total_seconds())
    set_session_cookies(resp, request, started.token, max_age, csrf=started.csrf)
    remember_language(request, resp, user.language)
    return resp


@router.post("/logout", dependencies=[Depends(Public())])
def logout(request: Request, session: SessionDep) -> RedirectResponse:
    token = bearer_token(request)
    if token:
        service.revoke_token(session, token)
    resp = RedirectResponse("/login", status_code=303)
    for name in (TOKEN_COOKIE, CSRF_COOKIE):
        resp.delete_cookie(
            name, httponly=name == TOKEN_COOKIE, samesite="strict", secure=cookie_secure(request)
        )
    return resp


@router.get("/console")
def home(request: Request, user: PageUser) -> HTMLResponse:
    return render(request, "home.html", _("Home"), user, status=_("Signed in as {name}.", name=user.name))


_section = section_at


def _allowed(section: Section) -> Roles:
    return Roles(*section.roles, page=True)


def dialer_check(faults: dict[str, Any] | None) -> Check:
    """The dialer's row on the system page: what it last reported of its own faults."""
    if faults is None:
        return Check(ok=False, detail=_("no report from the dialer in the last two minutes"))
    if faults.get("status") == "ok":
        return Check(ok=True, detail=_("calls placed as usual"))
    parts = []
    if "database" in faults.get("degraded", []):
        pending = int((faults.get("journal") or {}).get("pending") or 0)
        parts.append(_("database unreachable: new calls paused, {n} outcomes kept in the journal", n=pending))
    if "bus" in faults.get("degraded", []):
        parts.append(_("event bus unreachable: events kept until it is back"))
    if "ari_slow" in faults.get("degraded", []):
        for node, fault in sorted((faults.get("ari") or {}).items()):
            if isinstance(fault, dict) and fault.get("degraded"):
                parts.append(
                    _(
                        "Asterisk {node} answering slowly ({ms} ms): at most {window} calls started "
                        "at once, {held} held back",
                        node=node,
                        ms=fault.get("ari_ms", 0),
                        window=fault.get("ari_window", 0),
                        held=fault.get("ari_held_back", 0),
                    )
                )
    return Check(ok=False, detail="; ".join(parts))


@router.get("/console/system")
async def system(
    request: Request,
    settings: SettingsDep,
    db: DatabaseDep,
    user: Annotated[User, Depends(_allowed(_section("/console/system")))],
) -> HTMLResponse:
    from core.db import utcnow

    health = await check_health(settings, db)
    # (part, check, detail already in the reader's language)
    checks = [(_("Database"), health.database, False), (_("Event bus"), health.bus, False)]
    checks += [(_("Asterisk {name}", name=name), c, False) for name, c in health.asterisk.items()]
    checks.append((_("Dialer"), dialer_check(health.dialer), True))
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
    "/console/shifts",
    "/console/reports",
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
