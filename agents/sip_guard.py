"""The SIP guard: addresses that keep failing to sign in to SIP are blocked at Asterisk.

What it promises:

- Asterisk writes its security events (logger.conf ``security.log => security``); the guard
  follows that file on every node (`LogFollower`), and counts the failed sign-ins of each remote
  address (`FailureCounter`): one per digest answer that failed, for a known user (wrong password)
  and an unknown one alike (Asterisk challenges both the same way; a request without credentials
  learns nothing and costs nothing, so it is not counted). The
  ``sip_guard_max_failures``-th failure within ``sip_guard_window_seconds`` blocks the address
  for ``sip_guard_block_minutes`` (0: until someone unblocks it). 127.0.0.1 and ::1 are never
  blocked (the machine's own tools and the lab).
- A block is a row (`SipBlock`, audited) and a PJSIP ACL in each node's ``pjsip_blocks.conf``
  (included by pjsip.conf, res_pjsip reloaded): a blocked address gets 403 to everything, before
  any digest is checked. Blocks expire by themselves; ``warmline sip unblock ADDRESS`` lifts one.
- Asterisk's security log is the security log: every failure, challenge and ACL refusal is there
  with its address; the guard's own decisions (block, unblock, expiry) are in the audit log.

The clock is injected (`now`), so the counting is tested without waiting.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from agents.models import SipBlock
from agents.service import push_config
from core.audit import audit
from core.db import Database, utcnow
from core.i18n import _
from core.settings import Settings

log = logging.getLogger(__name__)

BLOCKS_FILE = "pjsip_blocks.conf"
ACL_NAME = "warmline-blocks"
GUARD_ACTOR = "sip-guard"
# Asterisk's security event types that mean "someone answered a challenge and failed": PJSIP logs
# ChallengeResponseFailed once per wrong digest (known or unknown user), other services InvalidPassword.
FAILURES = frozenset({"InvalidPassword", "ChallengeResponseFailed"})
_FIELD = re.compile(r'(\w+)="([^"]*)"')
NEVER_BLOCKED = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))


class SipGuardError(ValueError):
    """Bad input to a guard command (not an address, no such block); the message says which."""


@dataclass(frozen=True)
class SecurityEvent:
    kind: str
    address: str
    account: str
    service: str


def parse_event(line: str) -> SecurityEvent | None:
    """One line of Asterisk's security log, or None when it is not a security event.

    ``... SecurityEvent="InvalidPassword",...,AccountID="ag1f...",RemoteAddress="IPV4/TLS/203.0.113.9/5061"``
    """
    fields = dict(_FIELD.findall(line))
    kind = fields.get("SecurityEvent")
    remote = fields.get("RemoteAddress", "").split("/")
    if not kind or len(remote) < 3:
        return None
    return SecurityEvent(kind, remote[2], fields.get("AccountID", ""), fields.get("Service", ""))


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise SipGuardError(_("{address} is not an IP address", address=text)) from None


def never_blocked(address: str) -> bool:
    ip = parse_address(address)
    return any(ip in net for net in NEVER_BLOCKED)


class FailureCounter:
    """Failed sign-ins per address within a sliding window."""

    def __init__(self, max_failures: int, window: timedelta) -> None:
        self.max_failures = max_failures
        self.window = window
        self._seen: dict[str, deque[datetime]] = {}

    def failed(self, address: str, at: datetime) -> int:
        """Count one failure; returns the failures of `address` within the window, this one too."""
        times = self._seen.setdefault(address, deque())
        times.append(at)
        while times and times[0] <= at - self.window:
            times.popleft()
        return len(times)

    def over(self, count: int) -> bool:
        return count >= self.max_failures

    def forget(self, address: str) -> None:
        self._seen.pop(address, None)


class LogFollower:
    """New complete lines of a growing log file (from its end at first; a new file from its start)."""

    def __init__(self, path: Path, *, from_start: bool = False) -> None:
        self.path = path
        self._offset: int | None = 0 if from_start else None
        self._inode: int | None = None
        self._partial = b""

    def read(self) -> list[str]:
        try:
            stat = self.path.stat()
        except OSError:
            return []
        if self._offset is None:
            self._offset, self._inode = stat.st_size, stat.st_ino
            return []
        if stat.st_ino != self._inode or stat.st_size < self._offset:  # rotated or truncated
            self._offset, self._inode, self._partial = 0, stat.st_ino, b""
        if stat.st_size == self._offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [line.decode(errors="replace") for line in lines]


# ---------------------------------------------------------------- the block list


def active_blocks(session: Session, now: datetime) -> list[SipBlock]:
    stmt = select(SipBlock).order_by(SipBlock.created_at, SipBlock.address)
    return [b for b in session.scalars(stmt) if b.until is None or b.until > now]


def block(
    session: Session, address: str, *, reason: str, failures: int, until: datetime | None, actor: str
) -> SipBlock:
    """Block `address` (again: the block is extended); audited."""
    text = str(parse_address(address))
    row = session.scalar(select(SipBlock).where(SipBlock.address == text))
    if row is None:
        row = SipBlock(address=text, reason=reason, failures=failures, until=until)
        session.add(row)
    else:
        row.reason, row.failures, row.until = reason, failures, until
    session.flush()
    audit(
        session, actor, "sip.block", text, reason=reason, failures=failures, until=until and until.isoformat()
    )
    return row


def unblock(session: Session, address: str, *, actor: str) -> None:
    text = str(parse_address(address))
    row = session.scalar(select(SipBlock).where(SipBlock.address == text))
    if row is None:
        raise SipGuardError(_("{address} is not blocked", address=text))
    session.delete(row)
    audit(session, actor, "sip.unblock", text)


def expire_blocks(session: Session, now: datetime) -> list[str]:
    gone = [b.address for b in session.scalars(select(SipBlock)) if b.until is not None and b.until <= now]
    if gone:
        session.execute(delete(SipBlock).where(SipBlock.address.in_(gone)))
        for address in gone:
            audit(session, GUARD_ACTOR, "sip.block_expired", address)
    return gone


def render_blocks(addresses: list[str]) -> str:
    """A PJSIP ACL denying each blocked address (nothing else: the default is to permit)."""
    lines = ["; Generated by warmline's SIP guard from its database. Do not edit: changes are overwritten.\n"]
    if addresses:
        lines.append(f"\n[{ACL_NAME}]\ntype = acl\n")
        for address in addresses:
            ip = ipaddress.ip_address(address)
            lines.append(f"deny = {ip}/{ip.max_prefixlen}\n")
    return "".join(lines)


async def sync_blocks(settings: Settings, db: Database, now: datetime | None = None) -> dict[str, str]:
    """Write the active blocks to every node's pjsip_blocks.conf and reload where it changed."""

    def addresses() -> list[str]:
        with db.session() as session:
            expire_blocks(session, now or utcnow())
            return [b.address for b in active_blocks(session, now or utcnow())]

    return await push_config(settings, BLOCKS_FILE, render_blocks(await asyncio.to_thread(addresses)))


# ---------------------------------------------------------------- the guard


@dataclass
class SipGuard:
    """Follows the nodes' security logs; blocks an address once it fails too often."""

    settings: Settings
    db: Database
    now: Callable[[], datetime] = utcnow

    def __post_init__(self) -> None:
        s = self.settings
        self.counter = FailureCounter(s.sip_guard_max_failures, timedelta(seconds=s.sip_guard_window_seconds))
        self.followers = [LogFollower(s.node_security_log(node)) for node in s.asterisk_nodes]
        for follower in self.followers:
            follower.read()  # from here on: what was logged before the guard started is not counted
        self.blocked: set[str] = set()

    def _until(self, at: datetime) -> datetime | None:
        minutes = self.settings.sip_guard_block_minutes
        return at + timedelta(minutes=minutes) if minutes > 0 else None

    def _block(self, address: str, failures: int, at: datetime) -> None:
        reason = _("{count} failed SIP sign-ins", count=failures)
        with self.db.session() as session:
            block(
                session, address, reason=reason, failures=failures, until=self._until(at), actor=GUARD_ACTOR
            )
        log.warning("SIP guard: blocked %s after %d failed sign-ins", address, failures)

    async def feed(self, lines: list[str]) -> list[str]:
        """Count the failures in these log lines; returns the addresses newly blocked (and synced)."""
        newly: list[str] = []
        for line in lines:
            event = parse_event(line)
            if event is None or event.kind not in FAILURES or event.address in self.blocked:
                continue
            try:
                if never_blocked(event.address):
                    continue
            except SipGuardError:
                continue
            at = self.now()
            count = self.counter.failed(event.address, at)
            if self.counter.over(count):
                await asyncio.to_thread(self._block, event.address, count, at)
                self.blocked.add(event.address)
                newly.append(event.address)
        if newly:
            await sync_blocks(self.settings, self.db, self.now())
        return newly

    async def refresh(self) -> None:
        """Expire what is due, and forget the failures of addresses someone unblocked."""
        await sync_blocks(self.settings, self.db, self.now())

        def current() -> set[str]:
            with self.db.session() as session:
                return {b.address for b in active_blocks(session, self.now())}

        still = await asyncio.to_thread(current)
        for address in self.blocked - still:
            self.counter.forget(address)
        self.blocked = still

    async def run(self, poll: float = 0.5, refresh_every: float = 10.0) -> None:
        """Follow the logs for ever; a database or file error is logged and tried again."""
        since_refresh = refresh_every
        while True:
            try:
                if since_refresh >= refresh_every:
                    since_refresh = 0.0
                    await self.refresh()
                lines = [line for follower in self.followers for line in follower.read()]
                if lines:
                    await self.feed(lines)
            except (OSError, SQLAlchemyError) as exc:
                log.error("SIP guard: %s (trying again)", exc)
            await asyncio.sleep(poll)
            since_refresh += poll
