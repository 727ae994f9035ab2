"""Telling people about welfare alerts: a bus event and an optional webhook, after the commit.

``raise_alert`` notes the new alert's id in the session; when that session commits, the
``after_commit`` hook hands the ids to the installed :class:`WelfareNotifier` (one per process,
installed by whoever owns the bus: the service's lifespan or the dialer runtime). A rolled-back
transaction announces nothing. Without a notifier the alert is still in the table -- the console
polls it -- and the notifier's start-up sweep delivers webhooks that never went out.

Webhook: ``POST settings.welfare_webhook_url`` with JSON ``{"event": "welfare.alert.raised",
"alert": {...}}`` (masked number only); any 2xx is delivered; otherwise retried with exponential
backoff, ``settings.welfare_webhook_attempts`` times in all; the outcome is written to the alert
(``webhook_status``) and failures are logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.bus import Bus
from core.db import Database, utcnow
from core.features import ServiceContext
from core.messages import WelfareAlert
from core.settings import Settings
from dialer.welfare.models import Alert, AlertState
from dialer.welfare.service import describe, summary_text, take_pending

log = logging.getLogger(__name__)

_NOTIFIER: WelfareNotifier | None = None


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


class WelfareNotifier:
    """Delivers alert notifications in the background of one event loop."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        bus: Bus | None = None,
        *,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.transport = transport
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.delivered = 0
        self.failed = 0

    # ---------------------------------------------------- scheduling

    def notify(self, alert_ids: Iterable[int], *, change: str = "raised", by: str | None = None) -> None:
        """Schedule delivery (thread-safe: commits may happen in worker threads)."""
        ids = list(alert_ids)
        if not ids or self.loop is None or self.loop.is_closed():
            return

        def start() -> None:
            for alert_id in ids:
                task = asyncio.ensure_future(self.deliver(alert_id, change=change, by=by))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            start()
        else:
            self.loop.call_soon_threadsafe(start)

    async def drain(self) -> None:
        """Wait for every delivery under way (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ---------------------------------------------------- delivery

    async def deliver(self, alert_id: int, *, change: str = "raised", by: str | None = None) -> None:
        try:
            alert = await asyncio.to_thread(self._load, alert_id)
            if alert is None:
                return
            if self.bus is not None:
                try:
                    await self.bus.publish(message_for(alert, by=by))
                except Exception:
                    log.exception("welfare alert %s: bus publish failed", alert_id)
            if change == "raised" and self.settings.welfare_webhook_url:
                status = await self.post_webhook(describe(alert))
                await asyncio.to_thread(self._set_status, alert_id, status)
        except Exception:
            log.exception("welfare alert %s: notification failed (the alert itself is stored)", alert_id)

    def _load(self, alert_id: int) -> Alert | None:
        with self.db.session() as session:
            return session.get(Alert, alert_id)

    def _set_status(self, alert_id: int, status: str) -> None:
        with self.db.session() as session:
            alert = session.get(Alert, alert_id)
            if alert is not None:
                alert.webhook_status = status[:255]

    async def post_webhook(self, payload: dict[str, Any]) -> str:
        """POST with retries; returns ``delivered`` or ``failed: <last problem>``."""
        url = self.settings.welfare_webhook_url
        if not url:
            return "not configured"
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

    async def sweep(self, within: timedelta = timedelta(days=2)) -> int:
        """Deliver webhooks for recent unresolved alerts that never had one (a crash after the
        commit, say). Returns how many were scheduled."""
        if not self.settings.welfare_webhook_url:
            return 0

        def ids() -> list[int]:
            with self.db.session() as session:
                return list(
                    session.scalars(
                        select(Alert.id).where(
                            Alert.webhook_status.is_(None),
                            Alert.state != AlertState.resolved,
                            Alert.created_at >= utcnow() - within,
                        )
                    )
                )

        found = await asyncio.to_thread(ids)
        self.notify(found)
        return len(found)


def install(notifier: WelfareNotifier | None) -> None:
    """Make ``notifier`` the process's (None uninstalls); binds it to the running loop."""
    global _NOTIFIER
    if notifier is not None:
        notifier.loop = asyncio.get_running_loop()
    _NOTIFIER = notifier


def installed() -> WelfareNotifier | None:
    return _NOTIFIER


async def run_notifier(settings: Settings, db: Database, bus: Bus | None) -> None:
    """A service worker: install a notifier for the life of the task, sweeping once at start."""
    notifier = WelfareNotifier(settings, db, bus)
    install(notifier)
    try:
        await notifier.sweep()
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(notifier.drain(), 5)
        if installed() is notifier:
            install(None)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    changes = take_pending(session)
    if changes and _NOTIFIER is not None:
        for alert_id, change, by in changes:
            _NOTIFIER.notify([alert_id], change=change, by=by)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    # A savepoint's rollback (a concurrent duplicate) leaves the outer transaction's alerts be.
    if not session.in_transaction():
        take_pending(session)


async def serve_notifier(ctx: ServiceContext) -> None:
    """The ``welfare-notifier`` worker (registered by dialer.plugin)."""
    await run_notifier(ctx.settings, ctx.db, ctx.bus)
