"""Typed FastAPI dependencies shared by every router: settings, database session, current user.

Every route declares the roles it admits with `Roles(...)` (or `Public()`); a test walks the app and
fails for a route that declares neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from core.auth.models import Role, User
from core.auth.service import user_for_token
from core.db import Database
from core.i18n import from_accept_language, set_locale
from core.settings import Settings

TOKEN_COOKIE = "warmline_token"  # noqa: S105 - a cookie name


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_session(db: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with db.session() as session:
        yield session


async def request_locale(request: Request) -> str:
    """Speak the language the client asks for (``Accept-Language``; zh-CN when it asks for none)
    for the rest of the request. Async, so it runs in the request's own context: the route, and
    what it runs with ``asyncio.to_thread``, see the locale it sets."""
    return set_locale(from_accept_language(request.headers.get("accept-language")))


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


class SignInRequired(Exception):
    """Raised for a browser page without a session; the app answers with a redirect to /login."""


class Roles:
    """Dependency admitting only users with one of the given roles (admin is always admitted).

    `page=True` is for console pages: a visitor who is not signed in is sent to the login page.
    """

    def __init__(self, *roles: Role, page: bool = False) -> None:
        self.roles = frozenset(roles) | {Role.admin}
        self.page = page

    def __call__(self, user: Annotated[User | None, Depends(optional_user)]) -> User:
        if user is None and self.page:
            raise SignInRequired
        if user is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "not signed in: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if user.role not in self.roles:
            allowed = ", ".join(sorted(r.value for r in self.roles))
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role {user.role.value} may not do this ({allowed})"
            )
        return user


class Public:
    """Marks a route as open to anyone, so the every-route-declares-roles check can tell."""

    def __call__(self) -> None:
        return None


ANY_ROLE = tuple(Role)
CurrentUser = Annotated[User, Depends(Roles(*ANY_ROLE))]
AdminUser = Annotated[User, Depends(Roles(Role.admin))]
