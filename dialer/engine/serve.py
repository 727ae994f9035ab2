"""The dialer as a service, the same inside `warmline up` and as `warmline dialer run`."""

from __future__ import annotations

from core.features import ServiceContext
from dialer.engine.runtime import DialerWorker


async def serve_dialer(ctx: ServiceContext, *, campaigns: set[str] | None = None) -> None:
    """The worker places calls and routes calls nobody subscribed to (inbound hotline calls) to
    the Stasis handlers in ``ctx``."""
    worker = DialerWorker(ctx.settings, ctx.db, bus=ctx.bus, campaigns=campaigns, stasis=ctx.stasis)
    await worker.run()
