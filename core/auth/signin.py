"""One sign-in, the same for the API (`/api/auth/token`) and the console (`/login`): the input's
bounds, the throttle, the password, the audit. No HTTP here; the callers shape the answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from core.audit import audit
from core.auth import service, throttle
from core.auth.models import User
from core.auth.sessions import SessionPolicy
from core.errors import CodedError
from core.i18n import _
from core.settings import Settings


class SignInRefused(CodedError):
    """No user for this try: `status` 401 (wrong), 422 (malformed) or 429 (`retry_after` seconds)."""

    def __init__(self, message: str, *, code: str, status: int, retry_after: int | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignInTry:
    username: str
    password: str
    address: str | None
    via: str  # "api" or "console", for the audit log


def throttle_policy(settings: Settings) -> throttle.ThrottlePolicy:
    return throttle.ThrottlePolicy(
        account_free=settings.signin_account_tries,
        address_free=settings.signin_address_tries,
        lock=timedelta(seconds=settings.signin_lock_seconds),
        max_lock=timedelta(minutes=settings.signin_max_lock_minutes),
    )


def session_policy(settings: Settings) -> SessionPolicy:
    return SessionPolicy(
        ttl=timedelta(hours=settings.token_ttl_hours),
        idle=timedelta(minutes=settings.session_idle_minutes),
        rotate_after=timedelta(minutes=settings.session_rotate_minutes),
    )


def sign_in(session: Session, attempt: SignInTry, now: datetime, settings: Settings) -> User:
    """The user, or SignInRefused. A failure is committed here: the caller's answer is an error."""
    try:
        service.check_sign_in(attempt.username, attempt.password)
    except service.AccountError as exc:
        raise SignInRefused(exc.message, code=exc.code, status=422) from exc
    keys = throttle.SignInKeys.of(attempt.username, attempt.address)
    wait = throttle.retry_after(session, keys, now)
    if wait is not None:
        raise SignInRefused(
            _("too many failed sign-ins: try again in {seconds} seconds", seconds=wait),
            code="too_many_attempts",
            status=429,
            retry_after=wait,
        )
    user = service.authenticate(session, attempt.username, attempt.password)
    if user is None:
        throttle.record_failure(session, keys, now, throttle_policy(settings))
        audit(session, attempt.username[:64], "login.fail", ip=attempt.address, via=attempt.via)
        session.commit()  # the failure counts although the request ends in an error
        raise SignInRefused(_("wrong user name or password"), code="bad_credentials", status=401)
    throttle.record_success(session, keys)
    return user
