"""Sign-in, tokens and user administration over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel

from core.audit import audit
from core.auth import service
from core.auth.models import Role, User
from core.deps import CurrentUser, Public, SessionDep, SettingsDep, bearer_token

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

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            name=user.name,
            role=user.role,
            display_name=user.display_name,
            disabled=user.disabled,
            created_at=user.created_at,
        )


@router.post("/auth/token", dependencies=[Depends(Public())])
def login(body: TokenRequest, session: SessionDep, settings: SettingsDep, request: Request) -> TokenOut:
    user = service.authenticate(session, body.username, body.password)
    if user is None:
        audit(session, body.username[:64], "login.fail", ip=request.client.host if request.client else None)
        session.commit()  # the failure is recorded although the request ends in an error
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password")
    ttl = timedelta(hours=settings.token_ttl_hours)
    token = service.issue_token(session, user, ttl=ttl)
    return TokenOut(access_token=token, role=user.role, expires_in=int(ttl.total_seconds()))


@router.post("/auth/logout", status_code=204)
def logout(user: CurrentUser, session: SessionDep, request: Request) -> None:
    token = bearer_token(request)
    if token:
        service.revoke_token(session, token)
    audit(session, user.name, "logout", user.name)


@router.get("/me")
def me(user: CurrentUser) -> UserOut:
    return UserOut.of(user)
