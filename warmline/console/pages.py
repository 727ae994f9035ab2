"""The console: server-rendered, accessible pages. Sign-in sets an HttpOnly cookie with a token."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from core.audit import audit
from core.auth import service
from core.auth.models import Role, User
from core.deps import TOKEN_COOKIE, DatabaseDep, Public, Roles, SessionDep, SettingsDep, bearer_token
from core.i18n import install_jinja
from warmline.console.nav import SECTIONS, Section, section_at, sections_for
from warmline.health import check_health

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
install_jinja(templates.env)  # {{ _("…") }} in the current locale
router = APIRouter(include_in_schema=False)
PageUser = Annotated[User, Depends(Roles(*Role, page=True))]


def render(request: Request, name: str, title: str, user: User | None, **ctx: Any) -> HTMLResponse:
    sections = sections_for(user.role) if user else []
    context = {"title": title, "user": user, "sections": sections, "current": request.url.path, **ctx}
    return templates.TemplateResponse(request, name, context)


@router.get("/", dependencies=[Depends(Public())])
def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=303)


@router.get("/login", dependencies=[Depends(Public())])
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", "Sign in", None)


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
        error = "Sign-in failed: wrong user name or password."
        page = render(request, "login.html", "Sign in", None, error=error, username=username)
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
    return render(request, "home.html", "Home", user, status=f"Signed in as {user.name}.")


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
    from datetime import UTC, datetime

    health = await check_health(settings, db)
    checks = [("Database", health.database), ("Event bus", health.bus)]
    checks += [(f"Asterisk {name}", c) for name, c in health.asterisk.items()]
    return render(
        request,
        "system.html",
        "System",
        user,
        section=_section("/console/system"),
        checks=checks,
        checked=datetime.now(UTC).strftime("%H:%M:%S UTC"),
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
        "Users",
        user,
        section=_section("/console/users"),
        users=service.list_users(session),
    )


def _placeholder(section: Section) -> None:
    """Pages later features fill; each admits only its section's roles."""

    guard = Depends(_allowed(section))

    # A default, not an annotation: string annotations cannot see this closure's `section`.
    def page(request: Request, user: User = guard) -> HTMLResponse:
        return render(request, "section.html", section.title, user, section=section)

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
}
for _s in SECTIONS:
    if _s.path not in BUILT:
        _placeholder(_s)
