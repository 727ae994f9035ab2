"""Users, roles and API tokens."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, utcnow
from core.i18n import N_


class Role(enum.StrEnum):
    agent = "agent"
    manager = "manager"
    qa = "qa"
    supervisor = "supervisor"
    admin = "admin"


# What each role is called where a person reads it (translate with `_()`); the value stays the code.
ROLE_NAMES = {
    Role.agent: N_("agent"),
    Role.manager: N_("manager"),
    Role.qa: N_("QA reviewer"),
    Role.supervisor: N_("supervisor"),
    Role.admin: N_("administrator"),
}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(128))
    # The language the user chose (BCP 47: zh-CN, en); None: the browser's, else zh-CN.
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, so a database dump gives no working token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(64), default="login")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(default=False)
    # Console sessions: the last request (idle timeout), and the SHA-256 of the session's CSRF
    # token, carried over when the session's token is rotated (core.auth.sessions).
    last_used_at: Mapped[datetime | None]
    csrf_hash: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[User] = relationship(back_populates="tokens")


class SignInThrottle(Base):
    """Failed sign-ins counted per account and per address (core.auth.throttle). In the database,
    so every worker process of the service sees the same counts."""

    __tablename__ = "sign_in_throttle"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_sign_in_throttle_scope_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # "account" or "address"
    key: Mapped[str] = mapped_column(String(128))  # the user name as typed, or the address (IPv6: /64)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
