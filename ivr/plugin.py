"""The IVR's part of the command line (`warmline ivr`); its flows run inside the dialer and the
hotline, which call it. Its worker purges the personal prompts (a contact's name spoken) once they
are ``Settings.personal_prompt_hours`` old."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from core.db import utcnow
from core.features import Registry, ServiceContext, Worker
from ivr.cli import ivr_app
from ivr.tts import PromptCache, purge_personal

log = logging.getLogger(__name__)


def prompt_retention_worker(
    clock: Callable[[], datetime] = utcnow, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> Worker:
    """Every ``retention_every_s``: delete personal prompts older than ``personal_prompt_hours``."""

    async def run(ctx: ServiceContext) -> None:
        root = PromptCache.for_settings(ctx.settings).root
        while True:
            age = ctx.settings.personal_prompt_hours * 3600
            try:
                gone = await asyncio.to_thread(
                    purge_personal, root, older_than_s=age, now=clock().timestamp()
                )
                if gone:
                    log.info("purged %d personal prompts", gone)
            except OSError:
                log.exception("purging personal prompts failed; trying again at the next pass")
            await sleep(min(ctx.settings.retention_every_s, age / 2 or 1.0))

    return run


def register(registry: Registry) -> None:
    registry.commands("ivr", ivr_app)
    registry.worker("prompt-retention", prompt_retention_worker())
