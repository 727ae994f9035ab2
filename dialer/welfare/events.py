"""Telling people about welfare alerts: a bus event and an optional webhook, from a durable outbox.

An alert is raised inside the dialer's transaction, and the alert row is itself the pending notice:
until it has been announced its ``webhook_status`` is NULL. The notifier -- the ``welfare-notifier``
worker, one per service process -- looks for such alerts every few seconds and whenever it is woken
(:func:`wake`, which the dialer calls after committing a close that raised one). It claims each
alert with a compare-and-set on ``webhook_status`` (so two processes never both announce it),
publishes the bus event, posts the webhook when one is configured and writes the outcome:
``delivered``, ``failed: ...`` or ``not configured``. A process that dies between the commit and the
notice loses nothing: the next look, in any process, finds the alert still pending; a claim left by
a process that died while sending expires after ``CLAIM_S``. A rolled-back transaction leaves no
row, so it announces nothing.

Acknowledging and resolving are a person's actions, stored by the request that carries them;
:func:`announce_change` puts them on the bus after that request has committed (the row is the
record, and the console polls it).

Webhook: ``POST settings.welfare_webhook_url`` with JSON ``{"event": "welfare.alert.raised",
"alert": {...}}`` (masked number only); any 2xx is delivered; otherwise retried with exponential
backoff, ``settings.welfare_webhook_attempts`` times in all; failures are logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.exc import OperationalError

from core.bus import Bus
from core.db import Database, utcnow
from core.features import ServiceContext
from core.messages import WelfareAlert
from core.settings import Settings
from dialer.welfare.models import Alert, AlertState
from dialer.welfare.service import describe, summary_text

log = logging.getLogger(__name__)

POLL_S = 3.0
"""Seconds between looks for pending alerts when nobody wakes the notifier."""
CLAIM_S = 300.0
"""A claim older than this was left by a process that died while sending: the alert is pending again."""
RECENT = timedelta(days=2)
"""Only alerts this recent are announced late (a first start must not replay an old history)."""
NOT_CONFIGURED = "not configured"
_CLAIM = "sending until "

# The notifiers running in this process, so that wake() reaches them; each adds itself while it
# runs (nothing else writes this).
_running: set[WelfareNotifier] = set()


def topic_id(alert_id: int) -> str:
    """The alert's topic level (never all digits: a long id could look like a phone number)."""
    return f"welfare-{alert_id}"


def message_for(alert: Alert, *, by: str | None = None) -> WelfareAlert:
    return WelfareAlert(
        alert_id=topic_id(alert.id),
        kind=alert.kind,
        state=alert.state.value,
        campaign=alert.campaign_name,
        contact_name=alert.contact_name,
        phone=alert.phone_masked,
        summary=summary_text(alert),
        by=by,
    )


def wake() -> None:
    """An alert was just committed: the notifiers of this process look now, not at their next poll.

    Thread-safe (the dialer commits in worker threads); a shortcut only -- the poll is what
    guarantees delivery."""
    for notifier in list(_running):
        notifier.wake()


def _claim_value(now: datetime, lease_s: float) -> str:
    # Fixed-width ISO time in UTC, so the expiry can be read back exactly.
    return _CLAIM + (now + timedelta(seconds=lease_s)).strftime("%Y-%m-%dT%H:%M:%S")


def _claim_expired(status: str, now: datetime) -> bool:
    try:
        until = datetime.strptime(status.removeprefix(_CLAIM), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return True  # not a claim this code wrote: treat it as abandoned
    return until.replace(tzinfo=now.tzinfo) <= now


def _load(db: Database, alert_id: int) -> Alert | None:
    with db.session() as session:
        return session.get(Alert, alert_id)


class WelfareNotifier:
    """Announces pending alerts: the bus event, then the webhook; one alert at most once per claim."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        bus: Bus | None = None,
        *,
        poll_s: float = POLL_S,
        claim_s: float = CLAIM_S,
        within: timedelta = RECENT,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.poll_s = poll_s
        self.claim_s = claim_s
        self.within = within
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.transport = transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken: asyncio.Event | None = None
        self.delivered = 0
        self.failed = 0

    # ---------------------------------------------------- running

    async def run(self) -> None:
        """Until cancelled: announce what is pending, then wait to be woken or for the next poll."""
        self._loop = asyncio.get_running_loop()
        self._woken = asyncio.Event()
        _running.add(self)
        try:
            while True:
                self._woken.clear()
                try:
                    await self.deliver_pending()
                except OperationalError as exc:  # the database away: one line, the next look tries again
                    log.warning(
                        "welfare notifier: database unreachable, alerts looked for again: %s", exc.orig
                    )
                except Exception:
                    log.exception("welfare notifier: looking for pending alerts failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):  # not wait_for: see core/bus.py
                        await self._woken.wait()
        finally:
            _running.discard(self)

    def wake(self) -> None:
        """Look for pending alerts now (thread-safe)."""
        loop, woken = self._loop, self._woken
        if loop is None or woken is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            woken.set()
        else:
            loop.call_soon_threadsafe(woken.set)

    async def deliver_pending(self) -> int:
        """Claim every pending alert and announce them; returns how many this call claimed."""
        claimed = await asyncio.to_thread(self._claim_pending)
        await asyncio.gather(*(self.deliver(alert_id) for alert_id in claimed))
        return len(claimed)

    def _claim_pending(self) -> list[int]:
        now = utcnow()
        with self.db.session() as session:
            candidates = session.execute(
                select(Alert.id, Alert.webhook_status).where(
                    or_(Alert.webhook_status.is_(None), Alert.webhook_status.startswith(_CLAIM)),
                    Alert.state != AlertState.resolved,
                    Alert.created_at >= now - self.within,
                )
            ).all()
        claimed = []
        for alert_id, status in candidates:
            if status is not None and not _claim_expired(status, now):
                continue  # another process is sending it
            with self.db.session() as session:
                seen = Alert.webhook_status.is_(None) if status is None else Alert.webhook_status == status
                result = session.execute(
                    update(Alert)
                    .where(Alert.id == alert_id, seen)
                    .values(webhook_status=_claim_value(now, self.claim_s))
                    .execution_options(synchronize_session=False)
                )
                if int(getattr(result, "rowcount", 0) or 0) == 1:
                    claimed.append(alert_id)
        return claimed

    # ---------------------------------------------------- one alert

    async def deliver(self, alert_id: int) -> None:
        """Announce one alert (claimed by the caller) and write the outcome to it."""
        try:
            alert = await asyncio.to_thread(_load, self.db, alert_id)
            if alert is None:
                return
            if self.bus is not None:
                try:
                    # False means queued until the bus reconnects: the bus keeps it from here.
                    await self.bus.publish(message_for(alert))
                except Exception:
                    log.exception("welfare alert %s: bus publish failed", alert_id)
            status = NOT_CONFIGURED
            if self.settings.welfare_webhook_url:
                # `summary` for the people the webhook reaches (a chat, a pager), in the centre's
                # language (this worker's locale: zh-CN); the other keys are for programs.
                status = await self.post_webhook(describe(alert) | {"summary": summary_text(alert)})
            await asyncio.to_thread(self._set_status, alert_id, status)
        except Exception:
            # The claim stays and expires, so the alert is announced again later.
            log.exception("welfare alert %s: notification failed (the alert itself is stored)", alert_id)

    def _set_status(self, alert_id: int, status: str) -> None:
        with self.db.session() as session:
            alert = session.get(Alert, alert_id)
            if alert is not None:
                alert.webhook_status = status[:255]

    async def post_webhook(self, payload: dict[str, Any]) -> str:
        """POST with retries; returns ``delivered`` or ``failed: <last problem>``."""
        url = self.settings.welfare_webhook_url
        if not url:
            return NOT_CONFIGURED
        attempts = max(1, self.settings.welfare_webhook_attempts)
        body = {"event": "welfare.alert.raised", "alert": payload}
        delay = self.backoff
        problem = ""
        async with httpx.AsyncClient(timeout=10.0, transport=self.transport) as client:
            for attempt in range(1, attempts + 1):
                try:
                    resp = await client.post(url, json=body)
                    if 200 <= resp.status_code < 300:
                        self.delivered += 1
                        return "delivered"
                    problem = f"HTTP {resp.status_code}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "welfare webhook for alert %s, try %d/%d: %s",
                    payload.get("id"),
                    attempt,
                    attempts,
                    problem,
                )
                if attempt < attempts:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_backoff)
        self.failed += 1
        log.error(
            "welfare webhook for alert %s gave up after %d tries: %s", payload.get("id"), attempts, problem
        )
        return f"failed: {problem}"


async def announce_change(bus: Bus | None, db: Database, alert_id: int, *, by: str) -> None:
    """After a request that acknowledged or resolved an alert has committed: its new state on the
    bus. Best effort -- the row is the record."""
    if bus is None:
        return
    try:
        alert = await asyncio.to_thread(_load, db, alert_id)
        if alert is not None:
            await bus.publish(message_for(alert, by=by))
    except Exception:
        log.exception(
            "welfare alert %s: announcing the change failed (the change itself is stored)", alert_id
        )


async def run_notifier(settings: Settings, db: Database, bus: Bus | None) -> None:
    """The notifier for the life of the task (cancel it to stop)."""
    await WelfareNotifier(settings, db, bus).run()


async def serve_notifier(ctx: ServiceContext) -> None:
    """The ``welfare-notifier`` worker (registered by dialer.plugin)."""
    await run_notifier(ctx.settings, ctx.db, ctx.bus)
