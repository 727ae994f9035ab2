"""Typed FastAPI dependencies shared by every router: settings, database session, current user,
and the request's language.

Every route declares the roles it admits with `Roles(...)` (or `Public()`); a test walks the app and
fails for a route that declares neither. Both also set the language the request is answered in
(`core.i18n.set_locale`): the user's own choice, else the language this browser last chose (a
cookie), else the browser's Accept-Language, else zh-CN. They are async on purpose: an async
dependency runs in the request's own task, so the locale it sets holds for the route, the page it
renders and the error handlers; a sync one would set it in a worker thread and lose it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request, Response, status
from sqlalchemy.orm import Session

from core.auth import sessions
from core.auth.models import Role, User
from core.auth.service import user_for_token
from core.auth.signin import session_policy
from core.csrf import CSRF_COOKIE, check_cookie_request, check_same_origin
from core.db import Database
from core.errors import http_error
from core.i18n import _, from_accept_language, normalise, set_locale
from core.settings import Settings

TOKEN_COOKIE = "warmline_token"  # noqa: S105 - a cookie name
LANG_COOKIE = "warmline_lang"
"""The language this browser's last user chose, so the sign-in page speaks it too."""


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_session(db: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with db.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
# Committed before the response leaves ("function" scope): a client that follows a redirect at once
# (sign-in, then the console) must find what the previous request wrote.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(TOKEN_COOKIE)


def now(request: Request) -> datetime:
    """The app's clock (injected by tests: `create_app(clock=...)`)."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def client_address(request: Request) -> str | None:
    """The client's address: the peer's, or the forwarded one when the peer is a trusted proxy
    (the app's ProxyHeadersMiddleware, configured by `trusted_proxies`, has already swapped it)."""
    return request.client.host if request.client else None


def optional_user(request: Request, session: SessionDep) -> User | None:
    """The user of the request's bearer token, or of its console session cookie (then idle timeout
    and rotation apply, and `request.state.console_session` keeps the row for the CSRF check)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        return user_for_token(session, token, now(request)) if token else None
    cookie = request.cookies.get(TOKEN_COOKIE)
    if not cookie:
        return None
    settings: Settings = request.app.state.settings
    resumed = sessions.resume(session, cookie, now(request), session_policy(settings))
    if resumed is None:
        return None
    request.state.console_session = resumed.row
    if resumed.new_token is not None:
        # Set on the way out by the security middleware (a route may answer with its own Response).
        lasts = (resumed.new_expires_at or now(request)) - now(request)
        request.state.rotated_token = (resumed.new_token, max(1, int(lasts.total_seconds())))
    return resumed.user


def cookie_secure(request: Request) -> bool:
    """Cookies are Secure when the browser reached us over HTTPS (directly, or through a proxy in
    `trusted_proxies` that says so), or when the settings say so."""
    settings: Settings = request.app.state.settings
    return settings.cookie_secure or request.url.scheme == "https"


def set_session_cookies(
    resp: Response, request: Request, token: str, max_age: int, csrf: str | None = None
) -> None:
    """The session cookie (HttpOnly) and, at sign-in, its CSRF token (readable by the page's
    scripts); Secure when the browser reached us over HTTPS (directly or through a trusted proxy)."""
    secure = cookie_secure(request)
    resp.set_cookie(TOKEN_COOKIE, token, max_age=max_age, httponly=True, samesite="strict", secure=secure)
    if csrf is not None:
        resp.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, samesite="strict", secure=secure)


def request_locale(request: Request, user: User | None) -> str:
    """The language to answer in: the user's choice, this browser's last choice, Accept-Language."""
    if user is not None and user.language:
        return normalise(user.language)
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen:
        return normalise(chosen)
    return from_accept_language(request.headers.get("accept-language"))


class SignInRequired(Exception):
    """Raised for a browser page without a session; the app answers with a redirect to /login."""


class Roles:
    """Dependency admitting only users with one of the given roles (admin is always admitted).

    `page=True` is for console pages: a visitor who is not signed in is sent to the login page.
    """

    def __init__(self, *roles: Role, page: bool = False) -> None:
        self.roles = frozenset(roles) | {Role.admin}
        self.page = page

    async def __call__(self, request: Request, user: Annotated[User | None, Depends(optional_user)]) -> User:
        request.state.locale = set_locale(request_locale(request, user))
        await check_cookie_request(request)
        if user is None and self.page:
            raise SignInRequired
        if user is None:
            error = http_error(
                status.HTTP_401_UNAUTHORIZED,
                "not_signed_in",
                _("not signed in: send 'Authorization: Bearer <token>'"),
            )
            error.headers = {"WWW-Authenticate": "Bearer"}
            raise error
        if user.role not in self.roles:
            allowed = ", ".join(sorted(r.value for r in self.roles))
            raise http_error(
                status.HTTP_403_FORBIDDEN,
                "forbidden",
                _("role {role} may not do this ({allowed})", role=user.role.value, allowed=allowed),
            )
        return user


class Public:
    """Marks a route as open to anyone, so the every-route-declares-roles check can tell."""

    async def __call__(self, request: Request) -> None:
        request.state.locale = set_locale(request_locale(request, None))
        check_same_origin(request)


ANY_ROLE = tuple(Role)
CurrentUser = Annotated[User, Depends(Roles(*ANY_ROLE))]
AdminUser = Annotated[User, Depends(Roles(Role.admin))]
