"""My settings (every role): the language the console, the softphone's announcements and the API's
messages speak to this user. Stored on the user (`users.language`) in the request that carries the
form; the page that follows already speaks the new language and says what was saved."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.auth import service
from core.auth.models import Role, User
from core.deps import Roles, SessionDep
from core.i18n import HTML_LANG, LANGUAGE_NAMES, SUPPORTED_LOCALES, _, from_accept_language, normalise
from warmline.console.nav import section_at
from warmline.console.pages import remember_language, render

router = APIRouter(include_in_schema=False)
SECTION = section_at("/console/settings")
AnyPage = Annotated[User, Depends(Roles(*Role, page=True))]


def _page(
    request: Request, user: User, *, status: str = "", error: str = "", code: int = 200
) -> HTMLResponse:
    browser = from_accept_language(request.headers.get("accept-language"))
    choices = [(HTML_LANG[loc], LANGUAGE_NAMES[loc]) for loc in SUPPORTED_LOCALES]
    resp = render(
        request,
        "settings.html",
        _("My settings"),
        user,
        section=SECTION,
        choices=choices,
        chosen=user.language or service.AUTO_LANGUAGE,
        auto=service.AUTO_LANGUAGE,
        browser=LANGUAGE_NAMES[browser],
        browser_tag=HTML_LANG[browser],
        status=status,
        error=error,
    )
    resp.status_code = code
    return resp


@router.get("/console/settings")
def settings_page(request: Request, user: AnyPage, saved: str | None = None) -> HTMLResponse:
    status = ""
    if saved:
        status = _("Saved. Pages, announcements and messages now follow your browser's language.")
        if user.language:
            language = LANGUAGE_NAMES[normalise(user.language)]
            status = _("Saved. Pages, announcements and messages are now in {language}.", language=language)
    return _page(request, user, status=status)


@router.post("/console/settings")
def save_settings(
    request: Request, session: SessionDep, user: AnyPage, language: Annotated[str, Form()] = ""
) -> Response:
    try:
        service.set_language(session, user.name, language, actor=user.name)
    except service.AccountError as exc:
        session.rollback()
        return _page(request, user, error=exc.message, code=422)
    resp = RedirectResponse("/console/settings?saved=1", status_code=303)
    remember_language(request, resp, user.language)
    return resp
