"""Accounts: password hashing (argon2id), users, API tokens. No HTTP here."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import audit
from core.auth.models import ApiToken, Role, User
from core.db import utcnow
from core.errors import CodedError
from core.i18n import HTML_LANG, SUPPORTED_LOCALES, _, normalise

# argon2id with argon2-cffi's defaults (RFC 9106's low-memory choice: 64 MiB, 3 passes, 4 lanes). A
# small server may pick a cheaper profile from OWASP's list (e.g. 19 MiB × 2 passes, down to 7 MiB × 5)
# with WARMLINE_ARGON2_MEMORY_KIB and WARMLINE_ARGON2_TIME_COST; stored hashes keep their own
# parameters and are re-hashed at the next sign-in. The test suite uses 19 MiB × 2 to save CPU.
ARGON2_MIN_MEMORY_KIB = 7168
ARGON2_MAX_TIME_COST = 10


def _env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: not a whole number") from None
    if not low <= value <= high:
        raise ValueError(f"{name}={value}: must be between {low} and {high}")
    return value


def password_hasher(env: Mapping[str, str] = os.environ) -> PasswordHasher:
    """The argon2id hasher this process uses, from the environment (see above)."""
    default = PasswordHasher()
    memory = _env_int(env, "WARMLINE_ARGON2_MEMORY_KIB", default.memory_cost, ARGON2_MIN_MEMORY_KIB, 4 << 20)
    passes = _env_int(env, "WARMLINE_ARGON2_TIME_COST", default.time_cost, 1, ARGON2_MAX_TIME_COST)
    return PasswordHasher(memory_cost=memory, time_cost=passes)


@functools.cache
def _hasher() -> PasswordHasher:
    return password_hasher()


NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
MIN_PASSWORD = 10
# Longer passwords are refused before hashing: argon2 takes 64 MiB and its time grows with the input.
MAX_PASSWORD = 256
MAX_NAME = 64


class AccountError(CodedError):
    """A request about accounts that cannot be carried out, with a message for a person."""


# What a user may choose, as stored (BCP 47); "auto" (or nothing) clears the choice.
LANGUAGES = tuple(HTML_LANG[loc] for loc in SUPPORTED_LOCALES)
AUTO_LANGUAGE = "auto"


@functools.cache
def _dummy_hash() -> str:
    """Verified against for unknown users, so their sign-in costs what a known user's does.
    Made on first use: hashing takes a noticeable moment, which every command would pay at import."""
    return _hasher().hash("warmline-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(
            _("password too short: at least {n} characters", n=MIN_PASSWORD), code="password_too_short"
        )
    check_password_length(password)


def check_password_length(password: str) -> None:
    """The upper bound, checked before any hashing (a sign-in's too)."""
    if len(password) > MAX_PASSWORD:
        raise AccountError(
            _("password too long: at most {n} characters", n=MAX_PASSWORD), code="password_too_long"
        )


def check_sign_in(username: str, password: str) -> None:
    """What a sign-in form may carry, checked before hashing; a person-readable coded error."""
    if not username.strip() or not password:
        raise AccountError(_("enter a user name and a password"), code="credentials_missing")
    if len(username) > MAX_NAME:
        raise AccountError(_("user name too long: at most {n} characters", n=MAX_NAME), code="name_too_long")
    check_password_length(password)


def language_choice(text: str | None) -> str | None:
    """A language as stored: 'zh-CN' or 'en' for zh, zh-CN, en, en-GB...; None for 'auto' or nothing."""
    if text is None or not text.strip() or text.strip().lower() == AUTO_LANGUAGE:
        return None
    tag = text.strip()
    lang = tag.replace("_", "-").split("-")[0].lower()
    if lang not in ("zh", "en"):
        raise AccountError(
            _(
                "language '{language}': choose one of {choices}, or {auto} to follow the browser",
                language=tag,
                choices=", ".join(LANGUAGES),
                auto=AUTO_LANGUAGE,
            ),
            code="unsupported_language",
        )
    return HTML_LANG[normalise(tag)]


def create_user(
    session: Session,
    name: str,
    role: Role,
    password: str,
    *,
    actor: str,
    display_name: str | None = None,
    language: str | None = None,
) -> User:
    if not NAME_RE.match(name):
        raise AccountError(
            _(
                "invalid user name '{name}': 2-32 characters, lower-case letters, digits, '_', '.', '-',"
                " starting with a letter",
                name=name,
            ),
            code="invalid_name",
        )
    check_password(password)
    chosen = language_choice(language)
    if get_user(session, name) is not None:
        raise AccountError(_("user '{name}' already exists", name=name), code="user_exists")
    user = User(
        name=name,
        role=role,
        password_hash=hash_password(password),
        display_name=display_name,
        language=chosen,
    )
    session.add(user)
    session.flush()
    audit(session, actor, "user.create", name, role=role.value)
    return user


def set_language(session: Session, name: str, language: str | None, *, actor: str) -> User:
    """Store the user's language ('auto' or None: follow the browser); audited when it changes."""
    user = require_user(session, name)
    chosen = language_choice(language)
    if user.language != chosen:
        audit(session, actor, "user.language", name, before=user.language, after=chosen)
        user.language = chosen
    return user


def require_user(session: Session, name: str) -> User:
    user = get_user(session, name)
    if user is None:
        raise AccountError(_("no user named '{name}'", name=name), code="no_such_user")
    return user


def get_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def disable_user(session: Session, name: str, *, actor: str) -> User:
    user = require_user(session, name)
    if not user.disabled:
        user.disabled = True
        user.disabled_at = utcnow()
        for token in user.tokens:
            token.revoked = True
        audit(session, actor, "user.disable", name)
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The user these credentials sign in, or None. A password shorter than any a user may have
    fails without hashing (the length is all the guesser learns, and they chose it)."""
    if len(password) < MIN_PASSWORD:
        return None
    check_password_length(password)
    user = get_user(session, name)
    try:
        _hasher().verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled:
        return None
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "wl_" + secrets.token_urlsafe(32)


def issue_token(session: Session, user: User, *, ttl: timedelta | None, label: str = "login") -> str:
    """Create a bearer token; the plain value is returned once and never stored."""
    token = new_token()
    expires = utcnow() + ttl if ttl else None
    session.add(ApiToken(user_id=user.id, token_hash=digest(token), label=label, expires_at=expires))
    audit(session, user.name, "token.issue", user.name, label=label)
    return token


def user_for_token(session: Session, token: str, now: datetime | None = None) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
    if row is None or row.revoked:
        return None
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return None
    return None if row.user.disabled else row.user


def revoke_token(session: Session, token: str) -> None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
    if row is not None:
        row.revoked = True
