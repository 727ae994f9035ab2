"""Console sessions: a token in an HttpOnly cookie, with an idle timeout, rotation and a CSRF token
bound to the session. No HTTP here (core.deps and the console carry them).

- A session is an `ApiToken` labelled "console". Its CSRF token is random, given to the browser in
  a cookie it can read (the pages put it in their forms and the scripts in an X-CSRF-Token header)
  and stored only as a SHA-256 in the session's row: a cookie planted by someone else matches no
  session.
- Idle timeout: a session unused for `idle` ends (revoked), whatever its absolute expiry. The last
  use is written at most once a minute, not at every request.
- Rotation: a session token older than `rotate_after` is replaced by a new one with the same CSRF
  token and the same absolute expiry; the old token works `grace` longer, so requests already on
  their way (a polling page, a second tab) do not fail.

Bearer tokens of programs (the softphone, scripts) are not sessions: none of this applies to them.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import audit
from core.auth.models import ApiToken, User
from core.auth.service import digest, new_token

CONSOLE = "console"
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SessionPolicy:
    ttl: timedelta = timedelta(hours=12)
    idle: timedelta = timedelta(minutes=30)
    rotate_after: timedelta = timedelta(minutes=15)
    grace: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class Started:
    token: str
    csrf: str
    expires_at: datetime


@dataclass
class Resumed:
    """A live session: its user and row; `new_token` when this request rotated it."""

    user: User
    row: ApiToken
    new_token: str | None = None
    new_expires_at: datetime | None = None


def start(session: Session, user: User, now: datetime, policy: SessionPolicy) -> Started:
    token, csrf = new_token(), secrets.token_urlsafe(32)
    expires = now + policy.ttl
    session.add(
        ApiToken(
            user_id=user.id, token_hash=digest(token), label=CONSOLE, created_at=now, expires_at=expires,
            last_used_at=now, csrf_hash=digest(csrf),
        )
    )  # fmt: skip
    audit(session, user.name, "token.issue", user.name, label=CONSOLE)
    return Started(token=token, csrf=csrf, expires_at=expires)


def resume(session: Session, token: str, now: datetime, policy: SessionPolicy) -> Resumed | None:
    """The session this cookie token opens, touched and rotated when due; None when it is unknown,
    revoked, expired or idle too long (an idle session is revoked, so it cannot come back)."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
    if row is None or row.revoked or row.user.disabled:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if row.label == CONSOLE and row.last_used_at is not None and now - row.last_used_at > policy.idle:
        row.revoked = True
        audit(session, row.user.name, "session.idle", row.user.name)
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now
    resumed = Resumed(user=row.user, row=row)
    if row.label == CONSOLE and _rotation_due(row, now, policy):
        resumed.new_expires_at = row.expires_at
        resumed.new_token = _rotate(session, row, now, policy)
    return resumed


def csrf_matches(row: ApiToken, csrf: str | None) -> bool:
    return bool(csrf) and row.csrf_hash is not None and hmac.compare_digest(digest(csrf or ""), row.csrf_hash)


def _rotation_due(row: ApiToken, now: datetime, policy: SessionPolicy) -> bool:
    if now - row.created_at < policy.rotate_after:
        return False
    # Already rotated by another request (its expiry cut to the grace), or about to expire anyway.
    return row.expires_at is None or row.expires_at - now > policy.grace


def _rotate(session: Session, row: ApiToken, now: datetime, policy: SessionPolicy) -> str:
    token = new_token()
    session.add(
        ApiToken(
            user_id=row.user_id, token_hash=digest(token), label=row.label, created_at=now,
            expires_at=row.expires_at, last_used_at=now, csrf_hash=row.csrf_hash,
        )
    )  # fmt: skip
    row.expires_at = now + policy.grace
    return token
