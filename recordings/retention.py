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
from datetime import datetime

from core.db import Database, utcnow
from core.features import ServiceContext, Worker
from core.settings import Settings
from recordings.service import PurgeReport, purge

log = logging.getLogger(__name__)

ACTOR = "retention"
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def retention_pass(settings: Settings, db: Database, now: datetime) -> PurgeReport:
    """One pass: purge what is past retention at ``now`` (committed, each deletion audited)."""
    with db.session() as session:
        return purge(session, settings, dry_run=False, actor=ACTOR, now=now)


def retention_worker(clock: Clock = utcnow, sleep: Sleep = asyncio.sleep) -> Worker:
    """The worker: a pass at start, then one every ``retention_every_s``; a failed pass is logged
    and retried at the next (it must never stop the service)."""

    async def run(ctx: ServiceContext) -> None:
        while True:
            try:
                report = await asyncio.to_thread(retention_pass, ctx.settings, ctx.db, clock())
                if report.purged:
                    log.info("retention: purged %d recordings", len(report.purged))
            except Exception:
                log.exception("retention pass failed; trying again at the next")
            await sleep(ctx.settings.retention_every_s)

    return run
