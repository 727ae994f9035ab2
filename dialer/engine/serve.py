"""The dialer as a service, the same inside `warmline up` and as `warmline dialer run`."""

from __future__ import annotations

import asyncio

from core.bus import Bus
from core.db import Database
from core.settings import Settings
from dialer.bridge import finish_orphans
from dialer.engine.runtime import DialerWorker
from dialer.inbound import attach as serve_inbound
from dialer.welfare.events import run_notifier


async def serve_dialer(
    settings: Settings,
    db: Database,
    bus: Bus | None,
    *,
    campaigns: set[str] | None = None,
    welfare_notifier: bool = True,
) -> None:
    """Recordings a crash left are merged and registered first; then the worker places calls and
    serves inbound hotline calls (they arrive as its unrouted events). Welfare alerts are sent by
    the process that raises them, so a standalone dialer runs its own notifier."""
    await asyncio.to_thread(finish_orphans, settings, db)
    worker = DialerWorker(settings, db, bus=bus, campaigns=campaigns)
    serve_inbound(worker)
    tasks = [asyncio.create_task(worker.run(), name="dialer")]
    if welfare_notifier:
        tasks.append(asyncio.create_task(run_notifier(settings, db, bus), name="welfare-notifier"))
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
