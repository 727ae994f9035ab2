"""Recordings and QA: their APIs and their command groups (`warmline recordings`, `warmline qa`)."""

from __future__ import annotations

import asyncio

from core.features import Registry, ServiceContext
from recordings import api
from recordings.capture import recover_orphans
from recordings.cli import app as recordings_app
from recordings.qa import api as qa_api
from recordings.qa.cli import qa_app
from recordings.retention import retention_worker


async def recover_recordings(ctx: ServiceContext) -> None:
    """Once at start: merge and register the recordings an interrupted call left behind."""
    await asyncio.to_thread(recover_orphans, ctx.settings, ctx.db)


def register(registry: Registry) -> None:
    registry.router(api.router, qa_api.router)
    registry.worker("recording-recovery", recover_recordings)
    registry.worker("recording-retention", retention_worker())
    registry.commands("recordings", recordings_app)
    registry.commands("qa", qa_app)
