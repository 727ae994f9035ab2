"""User administration over HTTP (admins only)."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from core.auth import service
from core.auth.api import LanguageChange, UserOut, change_language
from core.auth.models import Role
from core.deps import AdminUser, DatabaseDep, SessionDep, SettingsDep
from core.errors import http_error
from warmline import accounts

router = APIRouter(prefix="/api/users", tags=["accounts"])


class UserCreate(BaseModel):
    name: str
    role: Role
    password: str = Field(min_length=service.MIN_PASSWORD)
    display_name: str | None = None
    language: str | None = Field(default=None, max_length=16, description="zh-CN, en, or null: the browser's")


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
            language=body.language,
        )
    except service.AccountError as exc:
        raise http_error(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.code, exc.message) from exc
    return AccountChangeOut(**change.__dict__)


@router.patch("/{name}")
def change_user(name: str, body: LanguageChange, admin: AdminUser, session: SessionDep) -> UserOut:
    """An administrator sets a user's language (for someone who cannot find the setting)."""
    user = change_language(session, name, body.language, admin.name)
    return UserOut.of(user)


@router.post("/{name}/disable")
async def disable_user(
    name: str, admin: AdminUser, settings: SettingsDep, db: DatabaseDep
) -> AccountChangeOut:
    try:
        change = await accounts.disable_user(settings, db, name, actor=admin.name)
    except service.AccountError as exc:
        raise http_error(status.HTTP_404_NOT_FOUND, exc.code, exc.message) from exc
    return AccountChangeOut(**change.__dict__)
