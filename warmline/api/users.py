"""User administration over HTTP (admins only)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from core.auth import service
from core.auth.api import UserOut
from core.auth.models import Role
from core.deps import AdminUser, DatabaseDep, SessionDep, SettingsDep
from warmline import accounts

router = APIRouter(prefix="/api/users", tags=["accounts"])


class UserCreate(BaseModel):
    name: str
    role: Role
    password: str = Field(min_length=service.MIN_PASSWORD)
    display_name: str | None = None


class AccountChangeOut(BaseModel):
    name: str
    role: Role
    disabled: bool
    sip_endpoint: str | None
    sync: dict[str, str]


@router.get("")
def list_users(_: AdminUser, session: SessionDep) -> list[UserOut]:
    return [UserOut.of(u) for u in service.list_users(session)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(
    body: UserCreate, admin: AdminUser, settings: SettingsDep, db: DatabaseDep
) -> AccountChangeOut:
    try:
        change = await accounts.add_user(
            settings,
            db,
            body.name,
            body.role,
            body.password,
            actor=admin.name,
            display_name=body.display_name,
        )
    except service.AccountError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return AccountChangeOut(**change.__dict__)


@router.post("/{name}/disable")
async def disable_user(
    name: str, admin: AdminUser, settings: SettingsDep, db: DatabaseDep
) -> AccountChangeOut:
    try:
        change = await accounts.disable_user(settings, db, name, actor=admin.name)
    except service.AccountError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return AccountChangeOut(**change.__dict__)
