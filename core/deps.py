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

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, status
from sqlalchemy.orm import Session

from core.auth.models import Role, User
from core.auth.service import user_for_token
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


def optional_user(request: Request, session: SessionDep) -> User | None:
    token = bearer_token(request)
    return user_for_token(session, token) if token else None


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
        set_locale(request_locale(request, user))
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
        set_locale(request_locale(request, None))


ANY_ROLE = tuple(Role)
CurrentUser = Annotated[User, Depends(Roles(*ANY_ROLE))]
AdminUser = Annotated[User, Depends(Roles(Role.admin))]
