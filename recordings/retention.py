"""The service purges recordings past their campaign's retention itself, on a schedule.

    registry.worker("recording-retention", retention_worker())      # recordings/plugin.py

Every ``Settings.retention_every_s`` (an hour by default) one pass deletes the recordings older
than their campaign's retention (its YAML's ``retention: {purpose, recordings_days}``, overridden by
``warmline recordings retention``; without either, ``Settings.recordings_retention_days``), each
deletion audited as ``recording.purge`` with the days and the purpose, by the actor ``retention``.
Nobody has to remember a cron job. The clock and the wait are injected, so a test runs passes on a
virtual clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from core.db import Database, utcnow
from core.features import ServiceContext, Worker
from core.settings import Settings
from recordings.at_rest import seal_voice_messages
from recordings.service import PurgeReport, purge

log = logging.getLogger(__name__)

ACTOR = "retention"
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def retention_pass(settings: Settings, db: Database, now: datetime) -> PurgeReport:
    """One pass: purge what is past retention at ``now`` (committed, each deletion audited)."""
    with db.session() as session:
        return purge(session, settings, dry_run=False, actor=ACTOR, now=now)


SEAL_EVERY_S = 60.0  # callers' voice messages are sealed within about this long of being left


def retention_worker(clock: Clock = utcnow, sleep: Sleep = asyncio.sleep) -> Worker:
    """The worker: every minute the voice messages callers left are sealed (encrypted); at start
    and every ``retention_every_s`` what is past retention is purged. A failed pass is logged and
    tried again at the next (it must never stop the service)."""

    async def run(ctx: ServiceContext) -> None:
        next_purge: datetime | None = None
        while True:
            now = clock()
            try:
                await asyncio.to_thread(seal_voice_messages, ctx.settings, now=now.timestamp())
                if next_purge is None or now >= next_purge:
                    report = await asyncio.to_thread(retention_pass, ctx.settings, ctx.db, now)
                    next_purge = now + timedelta(seconds=ctx.settings.retention_every_s)
                    if report.purged:
                        log.info("retention: purged %d recordings", len(report.purged))
            except Exception:
                log.exception("retention pass failed; trying again at the next")
            await sleep(min(SEAL_EVERY_S, ctx.settings.retention_every_s))

    return run
