"""Sign-in, tokens and user administration over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from core.audit import audit
from core.auth import service
from core.auth.models import Role, User
from core.auth.signin import SignInRefused, SignInTry, sign_in
from core.deps import CurrentUser, Public, SessionDep, SettingsDep, bearer_token, client_address, now
from core.errors import http_error
from core.i18n import set_locale

router = APIRouter(prefix="/api", tags=["accounts"])


class TokenRequest(BaseModel):
    username: str
    password: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - OAuth2 token type, not a secret
    role: Role
    expires_in: int


class UserOut(BaseModel):
    name: str
    role: Role
    display_name: str | None
    disabled: bool
    created_at: datetime
    language: str | None = Field(description="the language chosen (zh-CN, en); null: the browser's")

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            name=user.name,
            role=user.role,
            display_name=user.display_name,
            disabled=user.disabled,
            created_at=user.created_at,
            language=user.language,
        )


class LanguageChange(BaseModel):
    language: str | None = Field(
        max_length=16, description="zh-CN or en; 'auto' or null: follow the browser's Accept-Language"
    )


def change_language(session: SessionDep, name: str, language: str | None, actor: str) -> User:
    """Store the choice; the rest of the request (its answer, its errors) speaks the new language."""
    try:
        user = service.set_language(session, name, language, actor=actor)
    except service.AccountError as exc:
        status_code = 404 if exc.code == "no_such_user" else status.HTTP_422_UNPROCESSABLE_CONTENT
        raise http_error(status_code, exc.code, exc.message) from exc
    if user.language:
        set_locale(user.language)
    return user


@router.post(
    "/auth/token",
    dependencies=[Depends(Public())],
    responses={429: {"description": "too many failed sign-ins; the Retry-After header says how long"}},
)
def login(body: TokenRequest, session: SessionDep, settings: SettingsDep, request: Request) -> TokenOut:
    """A bearer token for these credentials. Failures are throttled per account and per address
    (429 with Retry-After); a password longer than 256 characters is refused before hashing."""
    attempt = SignInTry(body.username, body.password, client_address(request), via="api")
    try:
        user = sign_in(session, attempt, now(request), settings)
    except SignInRefused as exc:
        raise refused_error(exc) from exc
    ttl = timedelta(hours=settings.token_ttl_hours)
    token = service.issue_token(session, user, ttl=ttl)
    return TokenOut(access_token=token, role=user.role, expires_in=int(ttl.total_seconds()))


def refused_error(exc: SignInRefused) -> HTTPException:
    error = http_error(exc.status, exc.code, exc.message)
    if exc.retry_after is not None:
        error.headers = {"Retry-After": str(exc.retry_after)}
    if exc.status == status.HTTP_401_UNAUTHORIZED:
        error.headers = {"WWW-Authenticate": "Bearer"}
    return error


@router.post("/auth/logout", status_code=204)
def logout(user: CurrentUser, session: SessionDep, request: Request) -> None:
    token = bearer_token(request)
    if token:
        service.revoke_token(session, token)
    audit(session, user.name, "logout", user.name)


@router.get("/me")
def me(user: CurrentUser) -> UserOut:
    return UserOut.of(user)


@router.patch("/me")
def change_my_language(body: LanguageChange, user: CurrentUser, session: SessionDep) -> UserOut:
    """The signed-in user's own settings: the language pages, announcements and errors speak."""
    return UserOut.of(change_language(session, user.name, body.language, user.name))
