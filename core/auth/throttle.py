"""Sign-in throttling: per account and per address, counted in the database. No HTTP here.

Each try at a password costs a 64 MiB argon2 hash, so a locked-out try is refused before hashing.
Failures are counted under two keys: the account (the user name as typed, known or not, so the
answer never tells which accounts exist) and the address it came from (an IPv6 address by its /64,
which one home connection usually owns whole). A key may fail `free` times; each further failure
locks it for `lock`, doubled per failure, at most `max_lock`. A success clears the account's count
(not the address's: one right password must not buy an address more guesses at other accounts).
Counts are forgotten `forget` after the last failure.

The counts are rows (`SignInThrottle`) so every worker process of the service sees them; the row
is read `FOR UPDATE` (PostgreSQL; SQLite serialises writers anyway), so two processes counting one
key at once lose no failure. Times come from the caller (the app's clock), never read here.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import audit
from core.auth.models import SignInThrottle

ACCOUNT = "account"
ADDRESS = "address"


@dataclass(frozen=True)
class ThrottlePolicy:
    account_free: int = 5
    address_free: int = 20
    lock: timedelta = timedelta(seconds=30)
    max_lock: timedelta = timedelta(minutes=15)
    forget: timedelta = timedelta(hours=1)

    def free(self, scope: str) -> int:
        return self.account_free if scope == ACCOUNT else self.address_free

    def lock_for(self, scope: str, failures: int) -> timedelta | None:
        over = failures - self.free(scope)
        if over < 0:
            return None
        return min(self.lock * (1 << min(over, 20)), self.max_lock)


@dataclass(frozen=True)
class SignInKeys:
    """Whose tries these are: the account name as typed and the address they come from."""

    account: str
    address: str | None

    @classmethod
    def of(cls, username: str, address: str | None) -> SignInKeys:
        return cls(account=username.strip().lower()[:128], address=address_key(address))

    def pairs(self) -> list[tuple[str, str]]:
        keys = [(ACCOUNT, self.account)]
        if self.address:
            keys.append((ADDRESS, self.address))
        return keys


def address_key(address: str | None) -> str | None:
    """The address as counted: IPv4 as it is, IPv6 by its /64 (a home's whole prefix)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:128]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def retry_after(session: Session, keys: SignInKeys, now: datetime) -> int | None:
    """Seconds until these keys may try again; None when they may try now."""
    waits = [
        row.locked_until
        for scope, key in keys.pairs()
        if (row := _row(session, scope, key)) is not None and row.locked_until and row.locked_until > now
    ]
    if not waits:
        return None
    return max(1, math.ceil((max(waits) - now).total_seconds()))


def record_failure(session: Session, keys: SignInKeys, now: datetime, policy: ThrottlePolicy) -> None:
    """Count a failed sign-in under each key; a key that goes over its allowance is locked (audited
    when the lock starts, not at every refused try, so an attack cannot flood the audit log)."""
    for scope, key in keys.pairs():
        row = _locked_row(session, scope, key, now)
        if now - row.last_failure_at > policy.forget:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        lock = policy.lock_for(scope, row.failures)
        if lock is not None:
            row.locked_until = now + lock
            audit(session, "-", "login.throttle", f"{scope}:{key}"[:128], failures=row.failures,
                  seconds=int(lock.total_seconds()))  # fmt: skip


def record_success(session: Session, keys: SignInKeys) -> None:
    session.execute(
        delete(SignInThrottle).where(SignInThrottle.scope == ACCOUNT, SignInThrottle.key == keys.account)
    )


def _row(session: Session, scope: str, key: str) -> SignInThrottle | None:
    q = select(SignInThrottle).where(SignInThrottle.scope == scope, SignInThrottle.key == key)
    return session.scalar(q)


def _locked_row(session: Session, scope: str, key: str, now: datetime) -> SignInThrottle:
    """The key's row, locked for this transaction; made when it is the key's first failure (another
    process making it at the same moment: theirs is used)."""
    q = select(SignInThrottle).where(SignInThrottle.scope == scope, SignInThrottle.key == key)
    row = session.scalar(q.with_for_update())
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = SignInThrottle(scope=scope, key=key, failures=0, last_failure_at=now)
            session.add(row)
        return row
    except IntegrityError:
        row = session.scalar(q.with_for_update())
        assert row is not None
        return row
