"""The dialer as a service, the same inside `warmline up` and as `warmline dialer run`."""

from __future__ import annotations

import asyncio

from core.features import ServiceContext
from dialer.engine.runtime import DialerWorker
from recordings.capture import recover_orphans


async def serve_dialer(ctx: ServiceContext, *, campaigns: set[str] | None = None) -> None:
    """Recordings a crash left are merged and registered first; then the worker places calls and
    routes calls nobody subscribed to (inbound hotline calls) to the Stasis handlers in ``ctx``."""
    await asyncio.to_thread(recover_orphans, ctx.settings, ctx.db)
    worker = DialerWorker(ctx.settings, ctx.db, bus=ctx.bus, campaigns=campaigns, stasis=ctx.stasis)
    await worker.run()
