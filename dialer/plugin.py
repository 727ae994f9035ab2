"""The dialer's part of the service and the command line: campaigns, lists, do-not-call, live
figures, welfare alerts, agents' wrap-ups of calls, the pacing simulator; the dialer worker and the
welfare notifier."""

from __future__ import annotations

from core.features import Registry, ServiceContext
from dialer import api, stats_api, wrapup_api
from dialer.cli import campaign_app, dialer_app, dnc_app, lists_app
from dialer.pacing.cli import pacing_app
from dialer.welfare import api as welfare_api
from dialer.welfare.events import serve_notifier


async def serve_dialer_if_enabled(ctx: ServiceContext) -> None:
    """The dialer inside `warmline up`, unless settings turn it off (tests, API-only processes).
    `warmline dialer run` runs it alone, whatever that setting says."""
    if not ctx.settings.dialer_enabled:
        return
    # The engine (ARI, IVR runner, agent hand-over) is loaded only by a process that dials.
    from dialer.engine.serve import serve_dialer

    await serve_dialer(ctx)


def register(registry: Registry) -> None:
    registry.router(api.router, stats_api.router, welfare_api.router, wrapup_api.router)
    registry.commands("campaign", campaign_app)
    registry.commands("lists", lists_app)
    registry.commands("dnc", dnc_app)
    registry.commands("dialer", dialer_app)
    registry.commands("pacing", pacing_app)
    registry.worker("dialer", serve_dialer_if_enabled)
    registry.worker("welfare-notifier", serve_notifier)
